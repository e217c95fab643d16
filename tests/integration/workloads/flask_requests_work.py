# SPDX-License-Identifier: MIT
# Flask and requests, no network: a test client request and a prepared
# requests.Request.
import flask
import requests

app = flask.Flask('demo')


@app.route('/hello/<name>')
def hello(name):
    return flask.jsonify(greeting='hello ' + name, n=-15, args=dict(flask.request.args))


@app.route('/fail')
def fail():
    flask.abort(418)


with app.test_client() as client:
    r = client.get('/hello/world?q=1')
    print('flask:', r.status_code, r.get_json(), r.headers['Content-Type'])
    r = client.get('/fail')
    print('flask abort:', r.status_code)
    r = client.get('/nowhere')
    print('flask 404:', r.status_code)

req = requests.Request('POST', 'https://example.com/api', params={'a': '1', 'b': 'x y'},
                       json={'k': [1, 2, -3]}, headers={'X-Test': 'yes'})
p = req.prepare()
print('requests:', p.method, p.url, p.body, sorted(p.headers.items()))
s = requests.Session()
p2 = s.prepare_request(requests.Request('GET', 'http://example.com/', params={'z': 'ä'}))
print('session:', p2.url, sorted(p2.headers))
print('status:', requests.codes.teapot, requests.status_codes._codes[404][0])
print('done')
