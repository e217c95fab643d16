# SPDX-License-Identifier: MIT
# botocore from Debian's python3-botocore: session and client creation,
# no network (the DESIGN.md "aws CLI start-up" workload).
import botocore.session
from botocore.stub import Stubber

session = botocore.session.get_session()
session.set_credentials('AKIDEXAMPLE', 'secret')
for service in ('s3', 'dynamodb', 'sts'):
    client = session.create_client(service, region_name='eu-west-1')
    model = client.meta.service_model
    print(service, model.service_name, model.protocol, client.meta.endpoint_url,
          len(model.operation_names), model.operation_names[:3])
s3 = session.create_client('s3', region_name='us-east-1')
with Stubber(s3) as stub:
    stub.add_response('list_buckets', {'Buckets': [{'Name': 'b1'}],
                                       'Owner': {'ID': 'x'}})
    print('stubbed', [b['Name'] for b in s3.list_buckets()['Buckets']])
print('exceptions', sorted(n for n in dir(s3.exceptions) if n.startswith('NoSuch')))
print('done')
