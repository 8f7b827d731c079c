"""Review findings (issue 20, items 5 and 6): what walks around --env-deny and --allow.

- --env-deny matches a variable's name whatever its length (a name of 256 bytes
  or more used to be skipped, so a *SECRET* variable reached the command);
- under an --allow policy, a request that asks the upstream for another method
  (X-HTTP-Method-Override and its kin, a _method query parameter) is refused
  with 403; without a policy it goes through unchanged;
- a path that an upstream decoding twice or leniently would read as a dot
  segment, a '/' or a '\\' (%252e, %252f, overlong UTF-8 such as %c0%ae, "..%3b")
  is refused with 400, with or without a policy, as "%2e%2e" already was.

Requests are raw bytes over a brokered socket (children/held.py lends its fd 3);
the upstream's log shows what left the broker.
"""

import pytest

from children import rawhttp
from conftest import make_child_env, run_process
from test_20_http import assert_error_envelope, exchange_one, requests_until_marker

# -- item 5: --env-deny and long names ----------------------------------------------

# Linux limits one environment string (NAME=VALUE and its NUL) to MAX_ARG_STRLEN,
# 128 KiB: the longest name that fits beside "=v" is 128 KiB - 3 bytes.
NAME_LENGTHS = [255, 256, 4096, 128 * 1024 - 3]


def long_name(length, word):
    half = (length - len(word)) // 2
    return "A" * half + word + "A" * (length - len(word) - half)


def test_env_deny_matches_names_of_any_length(exec_argv):
    secret = [long_name(n, "SECRET") for n in NAME_LENGTHS]
    public = [long_name(n, "PUBLIC") for n in NAME_LENGTHS]
    env = make_child_env({**dict.fromkeys(secret, "v"), **dict.fromkeys(public, "v")})
    argv = exec_argv(["--env-deny", "*SECRET*"], child=["/usr/bin/env", "-0"])
    rc, out, err = run_process(argv, env=env, text=False)
    assert rc == 0, err.decode(errors="replace")
    seen = dict(v.split(b"=", 1) for v in out.split(b"\0") if v)
    for name in public:
        assert seen.get(name.encode()) == b"v", "%d-byte name lost" % len(name)
    for name in secret:
        assert name.encode() not in seen, "%d-byte *SECRET* name reached the command" % len(name)


# -- item 6: method overrides under --allow -----------------------------------------------

ALLOW = ["--allow", "GET /echo", "--allow", "GET /status/*"]
OVERRIDE_HEADERS = ["X-HTTP-Method-Override", "x-http-method", "X-METHOD-OVERRIDE",
                    "X_HTTP_Method_Override"]
OVERRIDE_QUERIES = ["_method=DELETE", "a=1&_method=DELETE", "_METHOD=delete", "%5Fmethod=DELETE",
                    "%5fMethod=DELETE", "%255Fmethod=DELETE", "_method[]=DELETE",
                    "a=1;_method=DELETE"]


def refused_before_the_upstream(h, upstream, key, request, status):
    """Sends request on a new brokered connection: the broker answers status with
    its error envelope, closes, and nothing reached the upstream. Returns the response."""
    upstream.clear_log()
    resp, c = exchange_one(h, request)
    assert resp.status == status, resp
    assert_error_envelope(resp, key)
    assert c.closed()
    assert requests_until_marker(h, upstream) == []
    return resp


def assert_says_override(resp):
    message = resp.json()["error"]["message"]
    assert "method override" in message and "--allow" in message, message


@pytest.mark.parametrize("name", OVERRIDE_HEADERS)
def test_method_override_header_is_refused_under_a_policy(held, upstream, key_file, name):
    request = rawhttp.request("GET", "/echo", headers=[(name, "DELETE")])
    assert_says_override(refused_before_the_upstream(held(ALLOW), upstream, key_file[1],
                                                     request, 403))


@pytest.mark.parametrize("query", OVERRIDE_QUERIES)
def test_method_query_parameter_is_refused_under_a_policy(held, upstream, key_file, query):
    request = rawhttp.request("GET", "/echo?" + query)
    assert_says_override(refused_before_the_upstream(held(ALLOW), upstream, key_file[1],
                                                     request, 403))


def test_policy_still_allows_requests_without_an_override(held, upstream):
    h = held(ALLOW)
    upstream.clear_log()
    resp, c = exchange_one(h, rawhttp.request("GET", "/echo?method=x&a_method=y", headers=[
        ("X-Method", "DELETE")]))
    assert resp.status == 200, resp
    [rec] = upstream.wait_requests(1)
    assert rec["method"] == "GET" and rec["query"].startswith("method=x&a_method=y&")


def test_method_override_goes_through_unchanged_without_a_policy(held, upstream):
    h = held()
    upstream.clear_log()
    resp, c = exchange_one(h, rawhttp.request("GET", "/echo?_method=DELETE", headers=[
        ("X-HTTP-Method-Override", "DELETE")]))
    assert resp.status == 200, resp
    [rec] = upstream.wait_requests(1)
    assert rec["method"] == "GET"
    assert rec["query"].startswith("_method=DELETE&")
    assert [v for k, v in rec["headers"] if k.lower() == "x-http-method-override"] == ["DELETE"]


# -- item 6: paths a second or lenient decoding turns into dot segments or separators ------

ENCODED_TARGETS = [
    "/a/%252e%252e/echo", "/a/%252E%252E/echo", "/echo/%252e", "/a%252f..%252fecho",
    "/a%255c..%255cecho", "/a/%25%32%65%25%32%65/echo", "/a/%25252e%25252e/echo",
    "/a/%c0%ae%c0%ae/echo", "/a/%C0%AE/echo", "/a/%c0%af..%c0%afecho", "/a%c1%9cecho",
    "/a/%e0%80%ae%e0%80%ae/echo", "/a%e0%80%afecho", "/a/%f0%80%80%ae/echo",
    "/a/%f8%80%80%80%ae/echo", "/a/%25c0%25ae/echo", "/a/..%3b/echo", "/a/%2e%2e%3Bx/echo",
]


@pytest.mark.parametrize("policy", [[], ["--allow", "GET /a/*", "--allow", "GET /status/*"]],
                         ids=["no-policy", "policy"])
@pytest.mark.parametrize("target", ENCODED_TARGETS)
def test_double_encoded_and_overlong_dot_segments_are_refused(held, upstream, key_file, target,
                                                              policy):
    refused_before_the_upstream(held(policy), upstream, key_file[1],
                                rawhttp.request("GET", target), 400)


def test_percent_text_and_valid_utf8_in_a_path_still_pass(held, upstream):
    h = held()
    upstream.clear_log()
    target = "/caf%C3%A9/%E0%A0%80/%F0%9F%98%80/100%25/..."
    resp, c = exchange_one(h, rawhttp.request("GET", target))
    assert resp.status == 404, resp  # the upstream's own answer: it got there
    [rec] = upstream.wait_requests(1)
    assert rec["raw_target"].split("?")[0] == target
