"""docs/rotation.md's "Your own functions, the AWS way" works as written: its shell blocks run, in
order and unchanged, with the aws CLI against a real server, and the rotation they start succeeds."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from strongroom.testing import ServerProcess
from strongroom.testing.functions import GENERIC_ROTATION

BIN = Path(sys.executable).parent
PAGE = Path(__file__).resolve().parents[2] / "docs" / "rotation.md"


def own_function_blocks() -> list[str]:
    """The ```sh blocks of the section, dedented (one sits in a list item)."""
    text = PAGE.read_text()
    section = text[text.index("## Your own functions, the AWS way") : text.index("### The sandbox")]
    return [textwrap.dedent(b) for b in re.findall(r"```sh\n(.*?)^\s*```", section, re.S | re.M)]


def test_own_function_section_runs_as_written(tmp_path: Path) -> None:
    blocks = own_function_blocks()
    assert len(blocks) == 3 and "create-role" in blocks[0] and "PassRole" in blocks[1] and "logs" in blocks[2]
    # What the page takes as given: the secret from "A first rotation in five minutes", a
    # deployer user (the PassRole example's), and the function's code with a dependency directory.
    (tmp_path / "lambda_function.py").write_text(GENERIC_ROTATION)
    (tmp_path / "pymysql").mkdir()
    (tmp_path / "pymysql" / "__init__.py").write_text("")
    data_dir = tmp_path / "strongroom-data"
    with ServerProcess(data_dir=data_dir) as srv:
        srv.client().create_secret(Name="prod/app-db", SecretString='{"password":"first-password"}')
        srv.client("iam").create_user(UserName="deployer")
        env = {
            "PATH": f"{BIN}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "AWS_ACCESS_KEY_ID": srv.access_key_id,
            "AWS_SECRET_ACCESS_KEY": srv.secret_access_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": srv.endpoint,
        }
        for block in blocks[:2]:
            run = subprocess.run(
                ["bash", "-e", "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
            )
            assert run.returncode == 0, (block, run.stdout, run.stderr)
        sm = srv.client()
        for _ in range(300):
            stages = sm.describe_secret(SecretId="prod/app-db")["VersionIdsToStages"]
            if len(stages) == 2 and not any("AWSPENDING" in s for s in stages.values()):
                break
            time.sleep(0.1)
        assert sorted(map(tuple, stages.values())) == [("AWSCURRENT",), ("AWSPREVIOUS",)], stages
        assert sm.get_secret_value(SecretId="prod/app-db")["SecretString"] != '{"password":"first-password"}'
        logs = subprocess.run(
            ["bash", "-e", "-c", blocks[2]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert logs.returncode == 0, logs.stderr
        assert "finishSecret" in logs.stdout, logs.stdout
