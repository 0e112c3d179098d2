from __future__ import annotations

import pytest

from conversations.netguard import UnsafeURL, check_public_url


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/",
        "http://127.0.0.1:8000/admin/",
        "http://2130706433/",  # 127.0.0.1 written as one number
        "http://0.0.0.0/",
        "http://10.0.0.5/",
        "http://172.16.3.4/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[fd00::1]/",
        "http://[fe80::1]/",
        "http://[2002:7f00:1::]/",  # 6to4 wrapping 127.0.0.1
        "ftp://example.com/",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http:///no-host",
    ],
)
def test_private_and_odd_urls_are_refused(url):
    with pytest.raises(UnsafeURL):
        check_public_url(url)


def test_public_address_is_allowed():
    assert check_public_url("https://93.184.216.34/page") == ["93.184.216.34"]
