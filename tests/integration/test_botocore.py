# SPDX-License-Identifier: MIT
"""botocore from Debian's python3-botocore: session and client creation
with a stubbed call, no network (workloads/botocore_work.py); output as
stock, modules served."""
import cdstest

if __name__ == '__main__':
    cdstest.workload_case(
        'botocore', 'botocore_work.py', need=['botocore'],
        must_serve=['botocore', 'botocore.session', 'botocore.client',
                    'botocore.endpoint', 'botocore.stub', 'urllib3']
    ).finish()
