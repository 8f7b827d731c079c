"""libcredfd is installable and usable as a system library: `meson install`
into a staging directory, then a small C client built with nothing but
`pkg-config --cflags --libs credfd` dials through a real broker."""

import os
import shutil
import subprocess

import pytest

from conftest import REPO, make_child_env, run_process

CLIENT_C = r"""
#include <credfd.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    static const char req[] = "GET /status/200?app_key=broker-sentinel HTTP/1.1\r\n"
                              "Host: " CREDFD_PLACEHOLDER_HOST "\r\nConnection: close\r\n\r\n";
    char buf[4096];
    int ctl = credfd_from_env(), fd;
    ssize_t n;

    if (ctl < 0 || (fd = credfd_dial(ctl)) < 0) {
        fprintf(stderr, "dial: %s\n", strerror(errno));
        return 1;
    }
    if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1))
        return 1;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
    return 0;
}
"""


@pytest.fixture(scope="module")
def staged(build_dir, tmp_path_factory):
    if shutil.which("pkg-config") is None or shutil.which("cc") is None:
        pytest.skip("pkg-config or cc missing (scripts/deps installs them)")
    dest = tmp_path_factory.mktemp("destdir")
    subprocess.run(["meson", "install", "-C", str(build_dir), "--destdir", str(dest),
                    "--no-rebuild", "--quiet"], check=True, capture_output=True)
    return dest


def find_one(root, name):
    for dirpath, _, files in os.walk(root):
        if name in files:
            return os.path.join(dirpath, name)
    raise AssertionError("%s not installed under %s" % (name, root))


@pytest.mark.parametrize("link", ["shared", "static"])
def test_installed_libcredfd_builds_with_pkg_config_and_dials(staged, exec_argv, tmp_path, link):
    pc = find_one(staged, "credfd.pc")
    assert os.path.exists(find_one(staged, "credfd.h"))
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pc), PKG_CONFIG_SYSROOT_DIR=str(staged))
    flags = ["--cflags", "--libs"] + (["--static"] if link == "static" else [])
    cflags = subprocess.run(["pkg-config"] + flags + ["credfd"], env=env, check=True,
                            capture_output=True, text=True).stdout.split()
    src = tmp_path / "client.c"
    src.write_text(CLIENT_C)
    exe = tmp_path / "client"
    extra = ["-static"] if link == "static" else []
    subprocess.run(["cc", "-o", str(exe), str(src)] + cflags + extra, check=True)
    child_env = {"LD_LIBRARY_PATH": os.path.dirname(find_one(staged, "libcredfd.so.1"))}
    code, out, err = run_process(exec_argv(child=[str(exe)]), env=make_child_env(child_env))
    assert code == 0, err
    assert out.startswith("HTTP/1.1 200 OK\r\n")
