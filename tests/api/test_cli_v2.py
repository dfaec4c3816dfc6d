"""`strongroom <service> ...` behaves as the aws CLI version 2 on the same command lines.

The oracle is Debian's `awscli` package (2.9.19, /usr/bin/aws; `make setup` installs it from
scripts/system-packages). Each test runs the same command line through both programs against one
real server and compares stdout, stderr and the exit code. Only one difference is normalised:
members newer than 2.9.19's botocore model (`NEWER_MEMBERS`), which that CLI cannot know.

2.9.19 predates `AWS_ENDPOINT_URL*` and `endpoint_url` in the config file (aws CLI 2.13), so the
comparisons pass `--endpoint-url`, and those sources are tested against AWS's documented
behaviour ("Service-specific endpoints", AWS SDKs and Tools reference guide) instead.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from strongroom.testing import ServerProcess, wait_for

BIN = Path(sys.executable).parent
AWS_V2 = Path("/usr/bin/aws")

# What botocore added after the aws CLI 2.9.19's model, which that CLI cannot know: CreateSecret's
# `Type` and PutSecretValue's `RotationToken` (external secrets, 2024-2025), and the operation
# BatchGetSecretValue (2023-11). They appear in input skeletons and in the list of valid choices.
NEWER_MEMBERS = {
    ("secretsmanager", "create-secret"): ("Type",),
    ("secretsmanager", "put-secret-value"): ("RotationToken",),
}
NEWER_OPERATIONS = {"secretsmanager": {"batch-get-secret-value"}}


@pytest.fixture(scope="module")
def v2_server(tmp_path_factory):  # type: ignore[no-untyped-def]
    if not AWS_V2.exists():
        pytest.fail("the aws CLI version 2 (/usr/bin/aws, Debian's awscli) is missing: run make setup")
    data_dir = tmp_path_factory.mktemp("cliv2") / "data"
    with ServerProcess(data_dir=data_dir) as srv:
        sm = srv.client()
        sm.create_secret(
            Name="text", SecretString="hello", Description="a text secret", Tags=[{"Key": "k", "Value": "v"}]
        )
        sm.create_secret(Name="binary", SecretBinary=b"\x00\x01binary\xff")
        srv.client(region="eu-west-1").create_secret(Name="in-ireland", SecretString="x")
        yield srv


def base_env(srv: ServerProcess, home: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(home),
        "TZ": "UTC",
        "LC_ALL": "C.UTF-8",
        "STRONGROOM_DATA_DIR": str(home / "no-data-dir"),
        "AWS_ACCESS_KEY_ID": srv.access_key_id,
        "AWS_SECRET_ACCESS_KEY": srv.secret_access_key,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    env.update(extra)
    return {k: v for k, v in env.items() if v != ""}


def run(program: str, args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    argv = [str(AWS_V2)] if program == "v2" else [str(BIN / "strongroom")]
    return subprocess.run([*argv, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def both(srv: ServerProcess, tmp_path: Path, args: list[str], endpoint: bool = True, **extra: str):  # type: ignore[no-untyped-def]
    """The same command line through the aws CLI v2 and strongroom; `{p}` in an argument becomes
    the program's name (v2 / sr), so commands that create something create different things."""
    env = base_env(srv, tmp_path, **extra)
    tail = ["--endpoint-url", srv.endpoint] if endpoint else []
    results = []
    for program in ("v2", "sr"):
        argv = [a.replace("{p}", program) for a in args] + tail
        done = run(program, argv, env, tmp_path)
        results.append((done.returncode, done.stdout.replace(f"-{program}", "-{p}"), done.stderr))
    return results


def same(srv: ServerProcess, tmp_path: Path, args: list[str], **extra: str) -> tuple[int, str, str]:
    v2, ours = both(srv, tmp_path, args, **extra)
    assert ours == v2, args
    return ours


@pytest.mark.parametrize(
    "args",
    [
        ["secretsmanager", "get-secret-value", "--secret-id", "text"],
        ["secretsmanager", "get-secret-value", "--secret-id", "text", "--output", "yaml"],
        ["secretsmanager", "describe-secret", "--secret-id", "text", "--output", "yaml"],
        ["secretsmanager", "describe-secret", "--secret-id", "text", "--output", "yaml-stream"],
        ["secretsmanager", "describe-secret", "--secret-id", "text", "--output", "text"],
        ["secretsmanager", "describe-secret", "--secret-id", "text", "--output", "table"],
        ["secretsmanager", "describe-secret", "--secret-id", "text", "--query", "Name", "--output", "yaml"],
        ["secretsmanager", "list-secret-version-ids", "--secret-id", "text"],
        ["secretsmanager", "list-secrets", "--query", "SecretList[].[Name,CreatedDate]", "--output", "text"],
        ["secretsmanager", "list-secrets", "--filters", "Key=name,Values=text", "--output", "table"],
        [
            "secretsmanager",
            "list-secrets",
            "--max-results",
            "1",
            "--output",
            "yaml-stream",
            "--query",
            "SecretList[].Name",
        ],
        ["secretsmanager", "list-secrets", "--filters", "Key=name,Values=text", "--output", "yaml"],
        ["secretsmanager", "get-secret-value", "--secret-id", "binary", "--output", "yaml"],
        ["secretsmanager", "get-secret-value", "--secret-id", "binary", "--query", "SecretBinary"],
        # One command of each other service.
        ["lambda", "list-functions"],
        ["iam", "get-user", "--output", "yaml"],
        ["sts", "get-caller-identity", "--output", "yaml"],
        ["sts", "get-caller-identity", "--output", "table"],
        [
            "cloudtrail",
            "lookup-events",
            "--lookup-attributes",
            "AttributeKey=EventName,AttributeValue=CreateSecret",
            "--query",
            "Events[-1].{Name: EventName, Time: EventTime, Source: EventSource}",
            "--output",
            "yaml",
        ],
    ],
)
def test_same_answer_as_the_aws_cli_v2(v2_server, tmp_path, args):
    rc, out, err = same(v2_server, tmp_path, args)
    assert rc == 0 and out and not err


def test_timestamps_are_iso_8601_in_the_local_zone(v2_server, tmp_path):
    args = ["secretsmanager", "describe-secret", "--secret-id", "text", "--query", "CreatedDate", "--output", "text"]
    rc, out, _ = same(v2_server, tmp_path, args, TZ="Asia/Kolkata")
    assert rc == 0 and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+05:30\n", out), out
    # cli_timestamp_format = wire gives the answer's own form (an epoch number on JSON services).
    config = tmp_path / "config"
    config.write_text("[default]\ncli_timestamp_format = wire\n")
    rc, out, _ = same(v2_server, tmp_path, args, AWS_CONFIG_FILE=str(config))
    assert rc == 0 and re.fullmatch(r"\d{10}\.\d+\n", out), out


@pytest.mark.parametrize(
    "args, message",
    [
        (["secretsmanager", "get-secret-value", "--secret-id", "nowhere"], "(ResourceNotFoundException)"),
        (["iam", "get-user", "--user-name", "nobody"], "(NoSuchEntity)"),
    ],
)
def test_service_errors_exit_254(v2_server, tmp_path, args, message):
    rc, out, err = same(v2_server, tmp_path, args)
    assert rc == 254 and out == "" and message in err and err.startswith("\nAn error occurred")


@pytest.mark.parametrize(
    "args, message",
    [
        (["secretsmanager", "get-secret-value"], "aws: error: the following arguments are required: --secret-id"),
        (["secretsmanager", "get-secret-value", "--secret-id", "a", "--bogus"], "Unknown options: --bogus"),
        (["secretsmanager", "list-secrets", "--max-results", "0"], "valid min value: 1"),
        (["secretsmanager", "list-secrets", "--filters", "[{"], "Error parsing parameter '--filters': Invalid JSON"),
        (["secretsmanager", "list-secrets", "--output", "xml"], "yaml-stream"),
        (["secretsmanager", "get-secret-value", "--cli-input-yaml", "a: ["], "Invalid YAML received."),
        (["secretsmanager", "get-secret-value", "--cli-input-json", "{"], "Invalid JSON received."),
        (
            ["secretsmanager", "get-secret-value", "--cli-input-json", "{}", "--cli-input-yaml", "a: 1"],
            "Only one --cli-input- parameter may be specified.",
        ),
        (["secretsmanager", "get-secret-value", "--generate-cli-skeleton", "output"], "--secret-id"),
    ],
)
def test_usage_and_parameter_errors_exit_252(v2_server, tmp_path, args, message):
    rc, out, err = same(v2_server, tmp_path, args)
    assert rc == 252 and out == "" and message in err
    assert "version 2" not in err  # version 1's banner is gone


def _choices(stderr: str) -> tuple[str, set[str]]:
    """An invalid-choice message without its table of choices, and the choices."""
    head, _, rest = stderr.partition("valid choices are:\n\n")
    table, _, tail = rest.partition("\n\n")
    return head + tail, {word for word in re.split(r"[|\s]+", table) if word}


def test_an_invalid_operation_exits_252(v2_server, tmp_path):
    (v2rc, v2out, v2err), (rc, out, err) = both(v2_server, tmp_path, ["secretsmanager", "get-secret-valu"])
    assert (rc, out) == (v2rc, v2out) == (252, "")
    for newer in NEWER_OPERATIONS["secretsmanager"]:
        err = err.replace(f"\n  * {newer}", "")  # a close match to the mistyped name, too
    (text, choices), (v2text, v2choices) = _choices(err), _choices(v2err)
    assert text == v2text and "Invalid choice: 'get-secret-valu', maybe you meant:" in text
    assert choices - NEWER_OPERATIONS["secretsmanager"] == v2choices


def test_configuration_errors_exit_253(v2_server, tmp_path):
    # No credentials anywhere (and no strongroom data directory to take a key from).
    rc, _, err = same(
        v2_server, tmp_path, ["sts", "get-caller-identity"], AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY=""
    )
    assert (
        rc == 253
        and err == '\nUnable to locate credentials. You can configure credentials by running "aws configure".\n'
    )
    config = tmp_path / "config"
    config.write_text("[default]\ncli_timestamp_format = none\n")
    rc, _, err = same(v2_server, tmp_path, ["sts", "get-caller-identity"], AWS_CONFIG_FILE=str(config))
    assert rc == 253 and "Unknown cli_timestamp_format value: none" in err


def test_a_missing_profile_exits_255(v2_server, tmp_path):
    rc, _, err = same(v2_server, tmp_path, ["sts", "get-caller-identity", "--profile", "nope"])
    assert rc == 255 and err == "\nThe config profile (nope) could not be found\n"


def test_binary_arguments_are_base64_by_default(v2_server, tmp_path):
    sm = v2_server.client()
    (tmp_path / "raw.bin").write_bytes(b"\x00\x01raw\xff")
    cases = [
        (["--secret-binary", base64.b64encode(b"base64 in").decode()], b"base64 in"),
        (["--secret-binary", "raw text", "--cli-binary-format", "raw-in-base64-out"], b"raw text"),
        (["--secret-binary", f"fileb://{tmp_path / 'raw.bin'}"], b"\x00\x01raw\xff"),
    ]
    for i, (extra, stored) in enumerate(cases):
        args = ["secretsmanager", "create-secret", "--name", f"blob{i}-{{p}}", *extra, "--query", "Name"]
        rc, out, _ = same(v2_server, tmp_path, args)
        assert (rc, out) == (0, f'"blob{i}-{{p}}"\n')
        for program in ("v2", "sr"):
            assert sm.get_secret_value(SecretId=f"blob{i}-{program}")["SecretBinary"] == stored
    # Not base64: refused before anything is sent, as version 2 refuses it.
    rc, out, err = same(
        v2_server, tmp_path, ["secretsmanager", "create-secret", "--name", "nb-{p}", "--secret-binary", "hello"]
    )
    assert (rc, out, err) == (255, "", '\nInvalid base64: "hello"\n')
    # The binary format from the profile.
    config = tmp_path / "config"
    config.write_text("[default]\ncli_binary_format = raw-in-base64-out\n")
    args = ["secretsmanager", "create-secret", "--name", "cfg-{p}", "--secret-binary", "hello", "--query", "Name"]
    rc, out, _ = same(v2_server, tmp_path, args, AWS_CONFIG_FILE=str(config))
    assert rc == 0 and sm.get_secret_value(SecretId="cfg-sr")["SecretBinary"] == b"hello"


def _without_newer_members(service: str, operation: str, text: str) -> str:
    for member in NEWER_MEMBERS.get((service, operation), ()):
        text = re.sub(rf"^{member}: .*\n", "", text, flags=re.M)  # YAML skeleton
        text = re.sub(rf',\n\s*"{member}": [^\n]*(?=\n\}})', "", text)  # JSON skeleton, last member
    return text


# Not list-secrets: its model changed since 2.9.19 beyond new members (the filter keys' order and
# documentation), which no narrow normalisation covers.
@pytest.mark.parametrize("operation", ["create-secret", "get-secret-value", "put-secret-value", "tag-resource"])
@pytest.mark.parametrize("form", ["yaml-input", "input"])
def test_input_skeletons(v2_server, tmp_path, operation, form):
    v2, ours = both(v2_server, tmp_path, ["secretsmanager", operation, "--generate-cli-skeleton", form], endpoint=False)
    assert ours[0] == v2[0] == 0 and ours[2] == v2[2] == ""
    assert _without_newer_members("secretsmanager", operation, ours[1]) == v2[1]


def test_cli_input_yaml_with_the_command_line_winning(v2_server, tmp_path):
    document = tmp_path / "input.yaml"
    document.write_text("SecretId: nowhere\nVersionStage: AWSCURRENT\n")
    args = ["secretsmanager", "get-secret-value", "--cli-input-yaml", f"file://{document}"]
    rc, _, err = same(v2_server, tmp_path, args)
    assert rc == 254 and "ResourceNotFoundException" in err
    rc, out, _ = same(
        v2_server, tmp_path, [*args, "--secret-id", "text", "--query", "SecretString", "--output", "text"]
    )
    assert (rc, out) == (0, "hello\n")
    # A skeleton, filled in, is an input.
    skeleton = run(
        "sr",
        ["secretsmanager", "put-secret-value", "--generate-cli-skeleton", "yaml-input"],
        base_env(v2_server, tmp_path),
        tmp_path,
    )
    filled = skeleton.stdout.replace("SecretId: ''", "SecretId: text").replace(
        "SecretString: ''", "SecretString: from yaml"
    )
    filled = "\n".join(line for line in filled.splitlines() if line.startswith(("SecretId", "SecretString")))
    document.write_text(filled)
    put = ["secretsmanager", "put-secret-value", "--cli-input-yaml", f"file://{document}", "--query", "Name"]
    rc, out, _ = same(v2_server, tmp_path, put)
    assert (rc, out) == (0, '"text"\n')
    assert v2_server.client().get_secret_value(SecretId="text")["SecretString"] == "from yaml"


def _headings(page: str) -> list[str]:
    plain = re.sub(".\b", "", page)
    return [line for line in plain.splitlines() if re.fullmatch(r"[A-Z][A-Z ]+", line)]


def _options(page: str, section: str = "OPTIONS", end: str = "GLOBAL OPTIONS") -> set[str]:
    plain = re.sub(".\b", "", page)
    options = plain.split(f"\n{section}\n", 1)[1].split(f"\n{end}\n", 1)[0]
    return set(re.findall(r"^       (--[a-z0-9-]+)", options, flags=re.M))


def _synopsis(page: str) -> str:
    return re.sub(".\b", "", page).split("\nSYNOPSIS\n", 1)[1].split("\nOPTIONS\n", 1)[0]


def test_help_of_a_command(v2_server, tmp_path):
    """Compared loosely: the page text comes from each CLI's own model (2.9.19's documentation is
    older) and groff fills lines by word lengths, so the sections and the options are compared."""
    args = ["secretsmanager", "get-secret-value", "help"]
    (v2rc, v2out, v2err), (rc, out, err) = both(v2_server, tmp_path, args, endpoint=False)
    assert rc == v2rc == 0 and err == v2err == ""
    assert (
        _headings(out)
        == _headings(v2out)
        == ["NAME", "DESCRIPTION", "SYNOPSIS", "OPTIONS", "GLOBAL OPTIONS", "EXAMPLES", "OUTPUT"]
    )
    assert _options(out) == _options(v2out)
    assert _options(out, "GLOBAL OPTIONS", "EXAMPLES") == _options(v2out, "GLOBAL OPTIONS", "EXAMPLES")
    assert _synopsis(out) == _synopsis(v2out)
    # `--help` after a command prints the same page (version 2.9.19 prints its first-pass parser's
    # usage instead, aws/aws-cli#7754; docs/operations.md lists the difference).
    for argv in (
        ["secretsmanager", "get-secret-value", "--help"],
        ["secretsmanager", "get-secret-value", "--secret-id", "x", "--help"],
    ):
        again = run("sr", argv, base_env(v2_server, tmp_path), tmp_path)
        assert (again.returncode, again.stdout, again.stderr) == (0, out, "")


# --- configuration: the standard AWS configuration wins over strongroom's local defaults ----------


def _admin_credentials(directory: Path, key: str, secret: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "admin-credentials").write_text(
        f"[strongroom]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"
    )
    return directory


def test_region_from_aws_config_file(v2_server, tmp_path):
    config = tmp_path / "elsewhere.ini"
    config.write_text("[default]\nregion = eu-west-1\n")
    args = ["secretsmanager", "describe-secret", "--secret-id", "in-ireland", "--query", "ARN", "--output", "text"]
    rc, out, _ = same(v2_server, tmp_path, args, AWS_CONFIG_FILE=str(config), AWS_DEFAULT_REGION="")
    assert rc == 0 and out.startswith("arn:aws:secretsmanager:eu-west-1:")
    # AWS_REGION before AWS_DEFAULT_REGION, as version 2 reads them.
    rc, out, _ = same(v2_server, tmp_path, args, AWS_REGION="eu-west-1")
    assert rc == 0 and out.startswith("arn:aws:secretsmanager:eu-west-1:")


def test_credentials_from_shared_file_and_profiles_over_the_data_dir_key(v2_server, tmp_path):
    # The data directory holds a key that the server refuses: only the AWS configuration can succeed.
    data = _admin_credentials(tmp_path / "data", "AKIAWRONGWRONGWRONG1", "wrong")
    credentials = tmp_path / "credentials"
    good = f"aws_access_key_id = {v2_server.access_key_id}\naws_secret_access_key = {v2_server.secret_access_key}\n"
    credentials.write_text(f"[default]\n{good}[other]\n{good}")
    no_keys = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "STRONGROOM_DATA_DIR": str(data)}
    args = ["sts", "get-caller-identity", "--query", "Account", "--output", "text"]
    shared = {"AWS_SHARED_CREDENTIALS_FILE": str(credentials)}
    assert same(v2_server, tmp_path, args, **no_keys, **shared) == (0, "123456789012\n", "")
    assert same(v2_server, tmp_path, args, **no_keys, **shared, AWS_PROFILE="other") == (0, "123456789012\n", "")
    assert same(v2_server, tmp_path, [*args, "--profile", "other"], **no_keys, **shared) == (0, "123456789012\n", "")
    # Keys in the config file's profile are credentials too.
    config = tmp_path / "config"
    config.write_text(f"[default]\n{good}")
    assert same(v2_server, tmp_path, args, **no_keys, AWS_CONFIG_FILE=str(config)) == (0, "123456789012\n", "")


def test_the_data_dir_key_and_region_when_the_configuration_is_silent(v2_server, tmp_path):
    data = _admin_credentials(tmp_path / "data", v2_server.access_key_id, v2_server.secret_access_key)
    env = base_env(
        v2_server,
        tmp_path,
        AWS_ACCESS_KEY_ID="",
        AWS_SECRET_ACCESS_KEY="",
        AWS_DEFAULT_REGION="",
        STRONGROOM_DATA_DIR=str(data),
        AWS_ENDPOINT_URL=v2_server.endpoint,
    )
    done = run("sr", ["secretsmanager", "describe-secret", "--secret-id", "text", "--query", "ARN"], env, tmp_path)
    assert (done.returncode, done.stderr) == (
        0,
        "",
    ) and '"arn:aws:secretsmanager:us-east-1:123456789012:secret:text-' in done.stdout


@pytest.mark.parametrize(
    "source",
    ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "profile endpoint_url", "services section"],
)
def test_endpoint_from_the_aws_configuration(v2_server, tmp_path, source):
    """Per AWS's "Service-specific endpoints" reference (aws CLI 2.13 and later; newer than the
    oracle): each source points strongroom's command at the test server instead of 127.0.0.1:8430."""
    extra: dict[str, str] = {}
    if source.startswith("AWS_"):
        extra[source] = v2_server.endpoint
    else:
        config = tmp_path / "config"
        if source == "profile endpoint_url":
            config.write_text(f"[default]\nendpoint_url = {v2_server.endpoint}\n")
        else:
            config.write_text(
                "[default]\nservices = here\n[services here]\n"
                f"secrets_manager =\n  endpoint_url = {v2_server.endpoint}\n"
            )
        extra["AWS_CONFIG_FILE"] = str(config)
    env = base_env(v2_server, tmp_path, **extra)
    done = run("sr", ["secretsmanager", "describe-secret", "--secret-id", "text", "--query", "Name"], env, tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, '"text"\n', "")


def test_the_default_endpoint_when_nothing_names_one(v2_server, tmp_path):
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 8430)) == 0:
            pytest.skip("something listens on 127.0.0.1:8430 (a strongroom serve?)")
    done = run("sr", ["sts", "get-caller-identity"], base_env(v2_server, tmp_path), tmp_path)
    assert (done.returncode, done.stdout) == (255, "")
    assert done.stderr == '\nCould not connect to the endpoint URL: "http://127.0.0.1:8430/"\n'


def test_interrupted_exits_130(v2_server, tmp_path):
    """Ctrl-C while the command waits (here: reading its input from a FIFO nobody writes): an empty
    line on stdout and exit code 130, as version 2 does."""
    results = []
    for program in ("v2", "sr"):
        fifo = tmp_path / f"input-{program}"
        os.mkfifo(fifo)
        argv = [str(AWS_V2)] if program == "v2" else [str(BIN / "strongroom")]
        argv += ["secretsmanager", "get-secret-value", "--cli-input-json", f"file://{fifo}"]
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=base_env(v2_server, tmp_path)
        )
        try:
            # The FIFO opens for writing only once the command has opened it for reading.
            writer = wait_for(functools.partial(_open_writer, fifo), timeout=60, what=f"{program} reading its input")
            # Ctrl-C, pressed again each second until the command ends (bounded): a single SIGINT
            # once left version 2 itself waiting for a minute in one CI run.
            for _ in range(60):
                proc.send_signal(signal.SIGINT)
                try:
                    out, err = proc.communicate(timeout=1)
                    break
                except subprocess.TimeoutExpired:
                    continue
            else:
                raise AssertionError(f"{program} did not end within 60 s of Ctrl-C")
            os.close(writer)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()  # reap it and close its pipes
        results.append((proc.returncode, out, err))
    assert results[1] == results[0] == (130, "\n", "")


def _open_writer(fifo: Path) -> int | None:
    try:
        return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return None


@pytest.mark.parametrize(
    "variable, command",
    [
        ("AWS_ENDPOINT_URL_LAMBDA", ["lambda", "list-functions", "--query", "length(Functions)"]),
        ("AWS_ENDPOINT_URL_IAM", ["iam", "get-user", "--query", "length(User.UserName)"]),
        ("AWS_ENDPOINT_URL_STS", ["sts", "get-caller-identity", "--query", "length(Account)"]),
        (
            "AWS_ENDPOINT_URL_CLOUDTRAIL",
            ["cloudtrail", "lookup-events", "--max-items", "1", "--query", "length(Events)"],
        ),
    ],
)
def test_each_services_endpoint_variable(v2_server, tmp_path, variable, command):
    done = run("sr", command, base_env(v2_server, tmp_path, **{variable: v2_server.endpoint}), tmp_path)
    assert (done.returncode, done.stderr) == (0, "") and re.fullmatch(r"\d+\n", done.stdout), done
