"""The console's fixtures: a real server, users made through IAM, an HTTP client that keeps
cookies, and Playwright driving Debian's Chromium (/usr/bin/chromium, scripts/system-packages)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from strongroom.testing import ServerProcess

CHROMIUM = "/usr/bin/chromium"

READ_ONLY_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "secretsmanager:ListSecrets",
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:ListSecretVersionIds",
                    "secretsmanager:GetResourcePolicy",
                ],
                "Resource": "*",
            }
        ],
    }
)


@dataclass
class User:
    name: str
    access_key_id: str
    secret_access_key: str


@pytest.fixture(scope="session")
def console_server() -> Iterator[ServerProcess]:
    with ServerProcess() as srv:
        yield srv


def make_user(server: ServerProcess, policy: str | None = None) -> User:
    iam = server.client("iam")
    name = f"u-{uuid.uuid4().hex[:10]}"
    iam.create_user(UserName=name)
    if policy is not None:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return User(name, key["AccessKeyId"], key["SecretAccessKey"])


@pytest.fixture
def reader(console_server: ServerProcess) -> User:
    """A user who may list and describe secrets, and nothing else."""
    return make_user(console_server, READ_ONLY_POLICY)


class Console:
    """The console over HTTP, as a browser would use it: cookies kept, redirects not followed."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.http = requests.Session()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.endpoint + path, allow_redirects=False, timeout=30, **kwargs)

    def post(self, path: str, data: dict[str, str], **kwargs: Any) -> requests.Response:
        return self.http.post(self.endpoint + path, data=data, allow_redirects=False, timeout=30, **kwargs)

    @staticmethod
    def csrf(page: requests.Response) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found is not None, page.text[:500]
        return found.group(1)

    def sign_in(
        self, access_key_id: str, secret_access_key: str, next_path: str = "", session_token: str = ""
    ) -> requests.Response:
        form = self.get("/console/sign-in" + (f"?next={next_path}" if next_path else ""))
        data = {
            "csrf": self.csrf(form),
            "access_key_id": access_key_id,
            "secret_access_key": secret_access_key,
            "session_token": session_token,
            "region": "us-east-1",
        }
        found = re.search(r'name="next" value="([^"]*)"', form.text)
        if found:
            data["next"] = found.group(1).replace("&amp;", "&")
        return self.post("/console/sign-in", data)


@pytest.fixture
def console(console_server: ServerProcess) -> Console:
    return Console(console_server.endpoint)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Not for the session: Playwright's sync API keeps an asyncio
    loop running in the thread while it is open, and every later test in the same worker that
    calls asyncio.run() would fail ("cannot be called from a running event loop")."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def _sign_in(page: Any, endpoint: str, access_key_id: str, secret_access_key: str) -> None:
    page.goto(endpoint + "/console/")
    page.get_by_label("Access key ID").fill(access_key_id)
    page.get_by_label("Secret access key").fill(secret_access_key)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def sign_in() -> Any:
    """``sign_in(page, endpoint, access_key_id, secret_access_key)``: the sign-in form, filled in."""
    return _sign_in
