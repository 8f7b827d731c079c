"""The runner's webfetch operation (RUNNER-OPS.md 8) against real HTTP(S) servers on
127.0.0.1 (tests/e2e/webpeer.py): headers, redirects, decoding, the size cap, the
deadline over the whole exchange, cancel, the address guard, proxies, conversion."""

import base64
import time

import pytest

from conftest import RunnerProcess, wait_for
from webpeer import GEN_TEXT, ForwardProxy, WebPeer, pattern

MIB = 1 << 20


@pytest.fixture(scope="module")
def web(certs):
    peer = WebPeer(certs)
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def runner(request, credbroker, certs, platform, tmp_path_factory):
    """The module's runner: the guard open (webfetch.allow_private), the test CA trusted."""
    r = RunnerProcess(credbroker, platform, tmp_path_factory.mktemp("runner"), certs.ca,
                      args=["--set", "webfetch.allow_private=true",
                            "--set", "webfetch.cacert=%s" % certs.ca])
    yield r
    r.close()


def fetch(platform, url, format=None, timeout=None, wait=30):
    args = {"url": url}
    if format is not None:
        args["format"] = format
    if timeout is not None:
        args["timeout"] = timeout
    return platform.result(platform.task("webfetch", args), timeout=wait)


def ok(res):
    assert res["success"] is True, res
    return res["result"]


# -- the request ---------------------------------------------------------------

def test_raw_formats_status_and_final_url(platform, runner, web):
    res = ok(fetch(platform, web.url("/text")))
    assert res == {"content": "plain text body\n", "url": web.url("/text"), "status_code": 200,
                   "total_size": 16}
    res = ok(fetch(platform, web.url("/html"), format="html"))
    assert res["content"].startswith("<html><head><title>T</title>")
    # A 4xx/5xx body is content, with its status.
    res = ok(fetch(platform, web.url("/status/404")))
    assert res["content"] == "status 404 body" and res["status_code"] == 404
    res = ok(fetch(platform, web.url("/status/503")))
    assert res["status_code"] == 503


def test_the_go_runners_headers_per_format(platform, runner, web):
    accept = {"markdown": "text/markdown, text/html;q=0.9, */*;q=0.8",
              "text": "text/plain, text/html;q=0.9, */*;q=0.8",
              "html": "text/html, */*;q=0.8", "Markdown": "text/html, */*;q=0.8"}
    for fmt, want in accept.items():
        import json
        headers = dict(json.loads(ok(fetch(platform, web.url("/headers"), format=fmt))["content"]))
        assert headers["Accept"] == want, fmt
        assert headers["User-Agent"].startswith("Mozilla/5.0 (Windows NT 10.0; Win64; x64)")
        assert headers["Accept-Language"] == "en-US,en;q=0.9,zh-CN;q=0.8,zh;q=0.7"
        assert headers["Accept-Encoding"] == "gzip, br"


def test_bad_urls(platform, runner):
    for url in ("", "ftp://example.com/", "HTTP://example.com/", "example.com"):
        res = fetch(platform, url)
        assert res["success"] is False and res["error"] == "valid http/https url is required", url
    res = fetch(platform, "http://exa mple.com/")
    assert res["success"] is False and res["error"].startswith("failed to create request: "), res
    res = platform.result(platform.task("webfetch", {"url": 5}), timeout=10)
    assert res["error"] == ("invalid webfetch args: json: cannot unmarshal number into Go struct "
                            "field WebFetchArgs.url of type string")
    res = platform.result(platform.task("webfetch", {"url": "http://x/", "timeout": "5"}),
                          timeout=10)
    assert res["error"] == ("invalid webfetch args: json: cannot unmarshal string into Go struct "
                            "field WebFetchArgs.timeout of type int")


def test_redirect_chains_codes_and_the_limit(platform, runner, web):
    # Go's client makes at most 10 requests: 9 redirects are followed, the 10th refused.
    res = ok(fetch(platform, web.url("/redirect/9")))
    assert res["content"] == "done" and res["url"] == web.url("/redirect/0")
    res = fetch(platform, web.url("/redirect/10"))
    assert res["success"] is False
    assert res["error"] == 'request failed: Get "%s": stopped after 10 redirects' % \
        web.url("/redirect/0"), res
    for code in (301, 303, 307, 308):
        res = ok(fetch(platform, web.url("/redirect/2?code=%d" % code)))
        assert res["content"] == "done", code
    res = fetch(platform, web.url("/loop"))
    assert res["error"] == 'request failed: Get "%s": stopped after 10 redirects' % \
        web.url("/loop")
    # A 3xx without Location is the response.
    res = ok(fetch(platform, web.url("/nolocation")))
    assert res["status_code"] == 302 and res["content"] == "no location here"


def test_redirects_across_schemes(platform, runner, web):
    res = ok(fetch(platform, web.url("/goto?u=" + web.surl("/text"))))
    assert res["url"] == web.surl("/text") and res["content"] == "plain text body\n"
    res = ok(fetch(platform, web.surl("/goto?u=" + web.url("/json"))))
    assert res["url"] == web.url("/json") and res["content"] == '{"a": 1}'
    res = fetch(platform, web.url("/goto?u=ftp://127.0.0.1/x"))
    assert res["success"] is False
    assert res["error"] == 'request failed: Get "ftp://127.0.0.1/x": unsupported protocol ' \
        'scheme "ftp"', res


def test_https_is_verified(platform, own_runner, web):
    # A runner without the test CA refuses the peer's certificate.
    p, _ = own_runner(args=["--set", "webfetch.allow_private=true"])
    res = fetch(p, web.surl("/text"))
    assert res["success"] is False
    assert res["error"].startswith('request failed: Get "%s": ' % web.surl("/text")), res
    assert "certificate" in res["error"].lower(), res


def test_decoded_bodies(platform, runner, web):
    for path in ("/gzip", "/deflate", "/br", "/chunked"):
        res = ok(fetch(platform, web.url(path), format="html"))
        # Over 30000 bytes: the spill file has the whole decoded body.
        assert res["total_size"] == len(GEN_TEXT), path
        assert res["truncated"] is True and res["file_path"].startswith(".outputs/webfetch_")
        assert (runner.workspace / res["file_path"]).read_bytes() == GEN_TEXT, path


def test_a_slow_body_within_the_deadline_arrives_whole(platform, runner, web):
    # The Go runner's bug: its deadline was cancelled before the body was read, so any
    # body past the first few KiB failed. 64 KiB over about 1.6 s here.
    res = ok(fetch(platform, web.url("/slow?size=65536&piece=2048&delay_ms=50"), timeout=20))
    assert res["total_size"] == 65536
    assert (runner.workspace / res["file_path"]).read_bytes() == pattern(65536)


def test_the_size_cap(platform, runner, web):
    exact = ok(fetch(platform, web.url("/big?size=%d" % (5 * MIB))))
    assert exact["total_size"] == 5 * MIB
    for q in ("size=%d" % (6 * MIB), "size=%d&chunked=1" % (6 * MIB),
              "size=%d&chunked=1" % (5 * MIB + 1)):
        res = fetch(platform, web.url("/big?" + q))
        assert res["success"] is False and \
            res["error"] == "response too large (exceeds 5MB limit)", (q, res)
    res = fetch(platform, web.url("/gzip-bomb"))
    assert res["error"] == "response too large (exceeds 5MB limit)", res


def test_a_stalled_body_times_out(platform, runner, web):
    web.stall_ended.clear()
    start = time.monotonic()
    res = fetch(platform, web.url("/stall?sent=5000"), timeout=2)
    assert res["success"] is False and res["error"] == "request timed out", res
    assert time.monotonic() - start < 15
    assert web.stall_ended.wait(10)  # the runner closed the connection


def test_cancel_aborts_the_request(platform, runner, web):
    web.stall_ended.clear()
    tid = platform.task("webfetch", {"url": web.url("/stall?sent=10"), "timeout": 60})
    wait_for(lambda: any(s["path"].startswith("/stall?sent=10") for s in web.seen), timeout=10)
    platform.cancel(tid)
    res = platform.result(tid, timeout=10)
    assert res["success"] is False
    assert res["error"] == 'request failed: Get "%s": context canceled' % \
        web.url("/stall?sent=10"), res
    assert web.stall_ended.wait(10)


def test_a_password_in_the_url_is_masked_in_errors(platform, runner):
    res = fetch(platform, "http://user:hunter2@127.0.0.1:1/")
    assert res["success"] is False and "hunter2" not in res["error"], res
    assert 'Get "http://user:***@127.0.0.1:1/"' in res["error"], res


# -- the address guard ----------------------------------------------------------

@pytest.fixture(scope="module")
def guarded(request, credbroker, certs, tmp_path_factory):
    """A runner with the guard on, localhost opened by name."""
    from mock_platform import MockPlatform
    import secrets
    d = tmp_path_factory.mktemp("guarded")
    (d / "platform").mkdir()
    p = MockPlatform(d / "platform", token="rt-" + secrets.token_hex(16))
    r = RunnerProcess(credbroker, p, d, certs.ca,
                      args=["--set", "webfetch.allow_hosts=localhost",
                            "--set", "webfetch.cacert=%s" % certs.ca])
    yield p
    r.close()
    p.stop()


def refused(url, ip):
    return 'request failed: Get "%s": destination address not allowed: %s' % (url, ip)


def test_the_guard_refuses_internal_addresses(guarded, web):
    for url, ip in ((web.url("/text"), "127.0.0.1"),
                    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
                    ("http://[::ffff:127.0.0.1]:%d/text" % web.port, "127.0.0.1"),
                    ("http://10.1.2.3:9/", "10.1.2.3"), ("http://0.0.0.0:9/", "0.0.0.0")):
        res = fetch(guarded, url)
        assert res["success"] is False and res["error"] == refused(url, ip), (url, res)
    # A host name that resolves to loopback (libcurl answers *.localhost itself).
    url = "http://evil.localhost:%d/text" % web.port
    res = fetch(guarded, url)
    assert res["success"] is False
    assert res["error"] in (refused(url, "127.0.0.1"), refused(url, "::1")), res


def test_the_guard_at_every_redirect_hop(guarded, web):
    # localhost is allowed by name; where it redirects is judged again.
    ok_res = ok(fetch(guarded, web.url("/text", host="localhost")))
    assert ok_res["content"] == "plain text body\n"
    for target, ip in ((web.url("/text"), "127.0.0.1"),
                       ("http://169.254.169.254/latest/meta-data/", "169.254.169.254")):
        res = fetch(guarded, web.url("/goto?u=" + target, host="localhost"))
        assert res["success"] is False and res["error"] == refused(target, ip), res


def test_allow_hosts_takes_cidr_prefixes(own_runner, web):
    p, _ = own_runner(args=["--set", "webfetch.allow_hosts=10.0.0.0/8,127.0.0.0/30"])
    assert ok(fetch(p, web.url("/text")))["status_code"] == 200
    res = fetch(p, "http://169.254.169.254/")
    assert res["error"] == refused("http://169.254.169.254/", "169.254.169.254")


def test_a_bad_allow_hosts_entry_stops_the_runner(credbroker, tmp_path):
    import subprocess
    from conftest import make_child_env
    out = subprocess.run([str(credbroker), "runner",
                          "--set", "webfetch.allow_hosts=good.example,10.0.0.0/99",
                          "--print-config"], capture_output=True, text=True, timeout=20,
                         env=make_child_env({"FLASHDUTY_RUNNER_TOKEN": "x" * 32}))
    assert out.returncode == 2, out
    assert "webfetch.allow_hosts" in out.stderr and "10.0.0.0/99" in out.stderr, out.stderr


# -- proxies ----------------------------------------------------------------------

def test_proxies_from_the_environment(own_runner, certs, web):
    proxy = ForwardProxy({"docs.internal.test": ("127.0.0.1", web.port),
                          "secure.internal.test": ("127.0.0.1", web.sport)})
    try:
        p, _ = own_runner(args=["--set", "webfetch.allow_hosts=docs.internal.test,"
                                "secure.internal.test",
                                "--set", "webfetch.cacert=%s" % certs.ca],
                          env={"HTTP_PROXY": proxy.url, "HTTPS_PROXY": proxy.url,
                               "NO_PROXY": "direct.internal.test"})
        res = ok(fetch(p, "http://docs.internal.test:%d/text" % web.port))
        assert res["content"] == "plain text body\n"
        assert ("GET", "http://docs.internal.test:%d/text" % web.port) in proxy.seen
        # https through the proxy: a CONNECT tunnel with TLS end to end, so the peer's
        # certificate (for 127.0.0.1 and localhost) does not pass for this name.
        res = fetch(p, "https://secure.internal.test:%d/text" % web.sport)
        assert ("CONNECT", "secure.internal.test:%d" % web.sport) in proxy.seen
        assert res["success"] is False and "certificate" in res["error"].lower(), res
        # Through a proxy the target is resolved here and judged: an unknown name fails
        # closed, a loopback one is refused.
        res = fetch(p, "http://elsewhere.internal.test/")
        assert res["success"] is False and "cannot resolve elsewhere.internal.test" in \
            res["error"], res
        # NO_PROXY: direct (and then not resolvable at all).
        n = len(proxy.seen)
        res = fetch(p, "http://direct.internal.test/")
        assert res["success"] is False and len(proxy.seen) == n, res
        # Go never proxies loopback: straight to the peer (allowed by CIDR? no: by name
        # only), so refused by the guard.
        res = fetch(p, web.url("/text"))
        assert res["error"] == refused(web.url("/text"), "127.0.0.1") and len(proxy.seen) == n
    finally:
        proxy.stop()


def test_the_guard_through_a_proxy(own_runner, web):
    # The proxy's own address (127.0.0.1) is exempt; the target is resolved here and
    # judged before anything is sent to the proxy.
    proxy = ForwardProxy({"169.254.169.254": ("127.0.0.1", web.port),
                          "10.1.2.3": ("127.0.0.1", web.port)})
    try:
        p, _ = own_runner(env={"HTTP_PROXY": proxy.url})
        for url, ip in (("http://169.254.169.254/text", "169.254.169.254"),
                        ("http://10.1.2.3/text", "10.1.2.3")):
            res = fetch(p, url)
            assert res["success"] is False and res["error"] == refused(url, ip), res
        assert proxy.seen == []
    finally:
        proxy.stop()


# -- conversion -------------------------------------------------------------------

def page(web, html, ctype="text/html; charset=utf-8", host="127.0.0.1"):
    name = "page%d" % len(web.pages)
    web.pages[name] = (ctype, html)
    return web.url("/p/" + name, host=host)


def test_markdown_text_and_raw_from_one_page(platform, runner, web):
    html = (b"<html><head><title>Runbook</title><style>.x{color:red}</style>"
            b"<script>var secret = 'SCRIPT-TEXT';</script></head><body>"
            b"<h1>Disk full</h1><p>Run <code>df -h</code>, then see "
            b"<a href=\"../docs/disk.html\">the guide</a>.</p>"
            b"<ul><li>one<ul><li>nested</li></ul></li><li>two</li></ul>"
            b"<pre><code class=\"language-sh\">du -sh /var/*\n</code></pre>"
            b"<table><tr><th>host</th><th>use</th></tr><tr><td>db1</td><td>97%</td></tr></table>"
            b"<noscript>NOSCRIPT-TEXT</noscript><!-- COMMENT-TEXT --></body></html>")
    url = page(web, html)
    md = ok(fetch(platform, url))["content"]
    base = web.url("/docs/disk.html")  # ../ from /p/NAME
    assert md.startswith("# Disk full\n\nRun `df -h`, then see [the guide](%s)." % base), md
    assert "- one\n  - nested\n- two" in md, md
    assert "```sh\ndu -sh /var/*\n```" in md, md
    assert "| host | use |\n| --- | --- |\n| db1 | 97% |" in md, md
    for hidden in ("SCRIPT-TEXT", "NOSCRIPT-TEXT", "COMMENT-TEXT", "color:red"):
        assert hidden not in md, hidden
    text = ok(fetch(platform, url, format="text"))["content"]
    assert text.startswith("Runbook Disk full Run df -h , then see the guide") or \
        text.startswith("Runbook Disk full Run df -h, then see the guide"), text
    assert "SCRIPT-TEXT" not in text and "\n" not in text
    raw = ok(fetch(platform, url, format="html"))["content"]
    assert raw == html.decode()
    # Not HTML: raw in every format.
    js = ok(fetch(platform, page(web, b'{"a": "<b>1</b>"}', "application/json")))
    assert js["content"] == '{"a": "<b>1</b>"}'


def test_links_are_resolved_against_the_final_url(platform, runner, web):
    html = b'<p><a href="next">n</a> <img src="/img/a.png" alt="A"></p>'
    target = page(web, html, host="localhost")
    res = ok(fetch(platform, web.url("/goto?u=" + target)))
    assert res["url"] == target
    assert res["content"] == "[n](http://localhost:%d/p/next) ![A](http://localhost:%d/img/a.png)" \
        % (web.port, web.port), res


def test_charsets(platform, runner, web):
    # ISO-8859-1 by the Content-Type.
    latin = "<p>Caf\u00e9 cr\u00e8me \u00fcber</p>".encode("iso-8859-1")
    res = ok(fetch(platform, page(web, latin, "text/html; charset=ISO-8859-1")))
    assert res["content"] == "Caf\u00e9 cr\u00e8me \u00fcber", res
    # Shift_JIS by a <meta charset>, no charset in the Content-Type.
    sjis = ('<html><head><meta charset="Shift_JIS"></head><body><p>\u969c\u5bb3\u5bfe\u5fdc'
            '\u624b\u9806</p></body></html>').encode("shift_jis")
    res = ok(fetch(platform, page(web, sjis, "text/html")))
    assert res["content"] == "\u969c\u5bb3\u5bfe\u5fdc\u624b\u9806", res
    # The Content-Type's charset wins over the page's <meta>.
    over = '<html><head><meta charset="Shift_JIS"></head><body><p>na\u00efve</p></body></html>' \
        .encode("windows-1252")
    res = ok(fetch(platform, page(web, over, "text/html; charset=windows-1252")))
    assert res["content"] == "na\u00efve", res
    # Entities, all of them.
    res = ok(fetch(platform, page(web, b"<p>&eacute;&nbsp;&#x1F600;&amp;&lt;&hearts;</p>"),
                   format="text"))
    # &nbsp; is a space in text, as the Go runner decodes it.
    assert res["content"] == "\u00e9 \U0001F600&<\u2665", ascii(res)


def test_a_large_page_is_converted_off_the_loop_and_spilled(platform, runner, web):
    rows = b"".join(b"<tr><td>host-%05d</td><td>%d%%</td></tr>" % (i, i % 100) for i in range(40000))
    html = b"<h1>Fleet</h1><table><tr><th>host</th><th>disk</th></tr>" + rows + b"</table>"
    assert len(html) < 5 * MIB
    res = ok(fetch(platform, page(web, html)))
    assert res["truncated"] is True and res["file_path"].startswith(".outputs/webfetch_")
    full = (runner.workspace / res["file_path"]).read_text()
    assert full.startswith("# Fleet\n\n| host | disk |\n| --- | --- |\n| host-00000 | 0% |")
    assert full.count("\n") == 2 + 40000 + 1 and full.endswith("| host-39999 | 99% |")
