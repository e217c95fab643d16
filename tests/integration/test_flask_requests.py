# SPDX-License-Identifier: MIT
"""Flask and requests from Debian's packages: a test-client GET and a
prepared requests.Request, no network; output as stock, modules served."""
import cdstest

if __name__ == '__main__':
    cdstest.workload_case(
        'flask_requests', 'flask_requests_work.py',
        need=['flask', 'requests'],
        must_serve=['flask', 'flask.app', 'werkzeug', 'werkzeug.routing',
                    'jinja2', 'requests', 'requests.models', 'urllib3']
    ).finish()
