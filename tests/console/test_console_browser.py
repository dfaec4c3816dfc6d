"""The console in a real browser (Chromium driven by Playwright): the flow issue 18 names, and the
refusals a user must see.

Flow: sign in, find a secret, see its versions and labels, retrieve its value (key/value view),
see that read in the audit search with the console's user agent, configure rotation and rotate,
read the history. Refusals: a wrong key, a read-only user (the refusal on the page and the denied
call in the audit trail), script in a description, a tag and a value shown as text.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from playwright.sync_api import expect

from strongroom import __version__
from strongroom.testing import ServerProcess, wait_for
from strongroom.testing.functions import create_function

CONSOLE_AGENT = f"strongroom-console/{__version__}"


def _unique(prefix: str) -> str:
    return f"{prefix}/{uuid.uuid4().hex[:10]}"


def test_the_console_flow(page: Any, console_server: ServerProcess, sign_in: Any) -> None:
    sm = console_server.client()
    name = _unique("app/db")
    sm.create_secret(Name=name, SecretString='{"username": "app", "password": "first"}')
    second = sm.put_secret_value(SecretId=name, SecretString='{"username": "app", "password": "hunter2"}')

    sign_in(page, console_server.endpoint, console_server.access_key_id, console_server.secret_access_key)
    expect(page.get_by_role("heading", name="Secrets")).to_be_visible()
    expect(
        page.get_by_text(f"arn:aws:iam::{console_server.client('sts').get_caller_identity()['Account']}:root")
    ).to_be_visible()

    # Find it: the name filter, then its page.
    page.get_by_label("Filter by").select_option("name")
    page.get_by_label("Search").fill(name)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()

    # Versions with their labels and dates; no value on the page before the button is pressed.
    versions = page.locator("#versions tbody tr")
    expect(versions).to_have_count(2)
    current = page.locator("#versions tr", has_text=second["VersionId"])
    expect(current).to_contain_text("AWSCURRENT")
    expect(page.locator("#versions tr", has_text="AWSPREVIOUS")).to_have_count(1)
    expect(current.locator("td").nth(2)).to_contain_text("UTC")
    assert "hunter2" not in page.content()

    page.get_by_role("button", name="Retrieve secret value").click()
    pairs = page.locator("#value-pairs")
    expect(pairs.locator("tr", has_text="password")).to_contain_text("hunter2")
    expect(pairs.locator("tr", has_text="username")).to_contain_text("app")

    # The read, in the audit search, in the signed-in principal's name, from the console.
    page.get_by_role("link", name="Audit", exact=True).click()
    page.get_by_label("Attribute").select_option("EventName")
    page.get_by_label("Value").fill("GetSecretValue")
    page.get_by_role("button", name="Search events").click()
    row = page.locator("#events tbody tr", has_text=name).first
    expect(row).to_contain_text("GetSecretValue")
    row.get_by_role("link", name="View record").click()
    record = json.loads(page.locator("#record").inner_text())
    assert record["eventName"] == "GetSecretValue"
    assert record["userAgent"] == CONSOLE_AGENT
    assert record["userIdentity"]["accessKeyId"] == console_server.access_key_id
    assert record["sourceIPAddress"] == "127.0.0.1"  # the browser's address
    assert name in json.dumps(record["requestParameters"])
    assert "hunter2" not in page.content()

    # Rotation: configure a function and a schedule, rotate now, read the history.
    function = create_function(
        console_server.client("lambda"), console_server.client("iam"), f"rot-{uuid.uuid4().hex[:8]}"
    )
    page.goto(console_server.endpoint + "/console/secrets")
    page.get_by_label("Search").fill(name)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=name).click()
    page.get_by_role("link", name="Rotation").click()
    page.get_by_label("Rotation function (name or ARN)").fill(function)
    page.get_by_label("Days or expression").fill("30")
    page.get_by_role("button", name="Save rotation").click()
    expect(page.get_by_text("Rotation configured.")).to_be_visible()
    expect(page.locator("#rotation-state")).to_have_text("on")

    def finished() -> bool:
        page.reload()
        return "finishSecret" in page.locator("#history").inner_text()

    wait_for(finished, timeout=60, what="the rotation's finishSecret step in the history", interval=0.5)
    history = page.locator("#history").inner_text()
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        assert re.search(step + r"\s+succeeded", history), history
    # And the function's logs, behind GetFunction.
    page.get_by_role("button", name="Show logs").click()
    expect(page.locator("article.invocation").first).to_contain_text("succeeded")

    page.get_by_role("button", name="Rotate secret immediately").click()
    expect(page.get_by_text("Rotation started.")).to_be_visible()


def test_a_wrong_key_is_refused_on_the_page(page: Any, console_server: ServerProcess, sign_in: Any) -> None:
    sign_in(page, console_server.endpoint, console_server.access_key_id, "not-the-secret-key")
    expect(page.get_by_role("alert")).to_have_text("The access key ID or the secret access key is wrong.")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert not [c for c in page.context.cookies() if c["name"] == "strongroom-console"]


def test_a_read_only_user_sees_the_refusal_and_the_audit_has_it(
    page: Any, console_server: ServerProcess, reader: Any, sign_in: Any
) -> None:
    sign_in(page, console_server.endpoint, reader.access_key_id, reader.secret_access_key)
    expect(page.get_by_role("heading", name="Secrets")).to_be_visible()
    page.get_by_role("link", name="Store a new secret").click()
    name = _unique("denied")
    page.get_by_label("Secret name").fill(name)
    page.get_by_label("Secret value").fill("nope")
    page.get_by_role("button", name="Store").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("AccessDeniedException")
    expect(alert).to_contain_text(f"user/{reader.name} is not authorized to perform: secretsmanager:CreateSecret")

    sm = console_server.client()
    try:
        sm.describe_secret(SecretId=name)
        raise AssertionError("the secret was created")
    except sm.exceptions.ResourceNotFoundException:
        pass
    trail = console_server.client("cloudtrail")

    def denied() -> dict[str, Any] | None:
        events = trail.lookup_events(LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": reader.name}])[
            "Events"
        ]
        for event in events:
            record = json.loads(event["CloudTrailEvent"])
            if record["eventName"] == "CreateSecret":
                return record  # type: ignore[no-any-return]
        return None

    record = wait_for(denied, timeout=10, what="the denied CreateSecret in the trail")
    assert record["errorCode"] == "AccessDenied" or record["errorCode"] == "AccessDeniedException"
    assert record["userAgent"] == CONSOLE_AGENT
    assert record["userIdentity"]["accessKeyId"] == reader.access_key_id


def test_script_in_secret_data_is_shown_as_text(page: Any, console_server: ServerProcess, sign_in: Any) -> None:
    payload = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
    sm = console_server.client()
    name = _unique("xss")
    sm.create_secret(
        Name=name,
        Description=payload[:200],
        SecretString=payload,
        Tags=[{"Key": "note", "Value": "<img src=x onerror=window.__xss=3>"}],
    )
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, console_server.endpoint, console_server.access_key_id, console_server.secret_access_key)
    page.get_by_label("Search").fill(name)
    page.get_by_role("button", name="Search").click()
    expect(page.locator("table").first).to_contain_text(payload[:60])  # the description, as text
    page.get_by_role("link", name=name).click()
    expect(page.locator("#tags")).to_contain_text("<img src=x onerror=window.__xss=3>")
    page.get_by_role("button", name="Retrieve secret value").click()
    expect(page.locator("#value-text")).to_have_text(payload)
    assert page.evaluate("window.__xss") is None
    assert page.locator("main img").count() == 0
    assert page.locator("main script").count() == 0
    assert dialogs == []


def test_managing_a_secret_from_its_page(page: Any, console_server: ServerProcess, sign_in: Any) -> None:
    sm = console_server.client()
    name = _unique("edit")
    sign_in(page, console_server.endpoint, console_server.access_key_id, console_server.secret_access_key)
    page.get_by_role("link", name="Store a new secret").click()
    page.get_by_label("Secret name").fill(name)
    page.get_by_label("Description").fill("made in the console")
    page.get_by_label("Secret value").fill("one")
    page.get_by_label("Tag key 1").fill("team")
    page.get_by_label("Tag value 1").fill("billing")
    page.get_by_role("button", name="Store").click()
    expect(page.get_by_text("Secret created.")).to_be_visible()
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "one"
    assert sm.describe_secret(SecretId=name)["Tags"] == [{"Key": "team", "Value": "billing"}]
    first = sm.get_secret_value(SecretId=name)["VersionId"]

    page.get_by_text("Store a new value").click()
    page.get_by_label("New secret value").fill("two")
    page.get_by_role("button", name="Store new value").click()
    expect(page.get_by_text("New secret value stored.")).to_be_visible()
    second = sm.get_secret_value(SecretId=name)
    assert second["SecretString"] == "two"

    # Move AWSCURRENT back to the first version.
    page.get_by_label("Label", exact=True).fill("AWSCURRENT")
    page.get_by_label("Move to version").select_option(first)
    page.get_by_label("Remove from version").select_option(second["VersionId"])
    page.get_by_role("button", name="Move label").click()
    expect(page.get_by_text("Staging label moved.")).to_be_visible()
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "one"
    expect(page.locator("#versions tr", has_text=first)).to_contain_text("AWSCURRENT")

    page.get_by_label("Tag key").fill("env")
    page.get_by_label("Tag value").fill("prod")
    page.get_by_role("button", name="Add tag").click()
    expect(page.get_by_text("Tags saved.")).to_be_visible()
    page.get_by_role("button", name="Remove tag team").click()
    expect(page.get_by_text("Tag removed.")).to_be_visible()
    assert sm.describe_secret(SecretId=name)["Tags"] == [{"Key": "env", "Value": "prod"}]

    # A policy that fails validation is not saved; one that passes is.
    account = console_server.client("sts").get_caller_identity()["Account"]
    broken = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Maybe", "Principal": "*", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
        ],
    }
    page.get_by_label("Policy (JSON)").fill(json.dumps(broken))
    page.get_by_role("button", name="Validate and save policy").click()
    findings = page.get_by_role("alert").first
    expect(findings).to_contain_text("did not pass validation")
    expect(findings).to_contain_text("SYNTAX_CHECKING: Statement Effect must be Allow or Deny.")
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=name)
    mine = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
            }
        ],
    }
    page.get_by_label("Policy (JSON)").fill(json.dumps(mine))
    page.get_by_role("button", name="Validate and save policy").click()
    expect(page.get_by_text("Resource policy saved.")).to_be_visible()
    assert json.loads(sm.get_resource_policy(SecretId=name)["ResourcePolicy"]) == mine

    # Delete with a recovery window of 7 days, then restore.
    page.on("dialog", lambda d: d.accept())
    page.get_by_label("Recovery window (days, 7 to 30)").fill("7")
    page.get_by_role("button", name="Schedule deletion").click()
    expect(page.get_by_text("Secret scheduled for deletion.")).to_be_visible()
    assert "DeletedDate" in sm.describe_secret(SecretId=name)
    page.get_by_role("button", name="Restore secret").click()
    expect(page.get_by_text("Secret restored.")).to_be_visible()
    assert "DeletedDate" not in sm.describe_secret(SecretId=name)


def test_access_keys_from_the_identities_page(page: Any, console_server: ServerProcess, sign_in: Any) -> None:
    iam = console_server.client("iam")
    user = f"id-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    sign_in(page, console_server.endpoint, console_server.access_key_id, console_server.secret_access_key)
    page.get_by_role("link", name="Identities").click()
    page.get_by_role("button", name=f"Create access key for {user}").click()
    new_key = page.locator("#new-key")
    expect(new_key).to_contain_text("Secret access key")
    key_id = new_key.locator("dd").nth(1).inner_text()
    secret = new_key.locator("dd").nth(2).inner_text()
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]] == [key_id]
    # The new key works: the user signs in with it elsewhere (no policies: the list is refused).
    other = page.context.browser.new_context()
    try:
        theirs = other.new_page()
        sign_in(theirs, console_server.endpoint, key_id, secret)
        expect(theirs.get_by_role("alert")).to_contain_text("not authorized to perform: secretsmanager:ListSecrets")
        page.get_by_role("link", name="Identities").click()
        expect(page.locator("#new-key")).to_have_count(0)  # shown once only
        page.on("dialog", lambda d: d.accept())
        page.get_by_role("button", name=f"Deactivate {key_id}").click()
        expect(page.get_by_text("Access key deactivated.")).to_be_visible()
        assert iam.list_access_keys(UserName=user)["AccessKeyMetadata"][0]["Status"] == "Inactive"
        theirs.reload()  # their session ends with their key
        expect(theirs.get_by_role("button", name="Sign in")).to_be_visible()
        expect(theirs.get_by_text("Your session has ended. Sign in again.")).to_be_visible()
    finally:
        other.close()


def test_audit_search_by_time_range(page: Any, console_server: ServerProcess, sign_in: Any) -> None:
    sm = console_server.client()
    name = _unique("audit")
    sm.create_secret(Name=name, SecretString="x")
    sign_in(page, console_server.endpoint, console_server.access_key_id, console_server.secret_access_key)
    page.get_by_role("link", name="Audit", exact=True).click()
    page.get_by_label("Attribute").select_option("ResourceName")
    page.get_by_label("Value").fill(sm.describe_secret(SecretId=name)["ARN"])
    page.get_by_role("button", name="Search events").click()
    expect(page.locator("#events tbody tr", has_text="CreateSecret")).to_have_count(1)
    page.get_by_label("From (UTC)").fill("2001-01-01T00:00")
    page.get_by_label("To (UTC)").fill("2001-01-02T00:00")
    page.get_by_role("button", name="Search events").click()
    expect(page.locator("#events tbody")).to_have_text("No events.")


def test_signing_in_and_reading_a_value_with_the_keyboard_only(page: Any, console_server: ServerProcess) -> None:
    sm = console_server.client()
    name = _unique("keys")
    sm.create_secret(Name=name, SecretString="typed-not-clicked")
    page.goto(console_server.endpoint + "/console/")
    expect(page.get_by_label("Access key ID")).to_be_focused()  # autofocus
    page.keyboard.type(console_server.access_key_id)
    page.keyboard.press("Tab")
    page.keyboard.type(console_server.secret_access_key)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Secrets")).to_be_visible()
    page.get_by_label("Search").focus()
    page.keyboard.type(name)
    page.keyboard.press("Enter")
    link = page.get_by_role("link", name=name)
    link.focus()
    page.keyboard.press("Enter")
    button = page.get_by_role("button", name="Retrieve secret value")
    button.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#value-text")).to_have_text("typed-not-clicked")
