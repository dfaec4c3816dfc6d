"""Another project's test suite, as it would use strongroom: through the pytest plugin only."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def test_a_project_swaps_its_mock_for_strongroom(tmp_path):
    """A separate pytest run, in its own directory, with nothing but the plugin's fixtures."""
    (tmp_path / "app.py").write_text(
        textwrap.dedent("""
        import json
        import boto3

        def load_config():
            sm = boto3.client("secretsmanager")   # no endpoint here: the environment says where
            return json.loads(sm.get_secret_value(SecretId="app/config")["SecretString"])
    """)
    )
    (tmp_path / "test_app.py").write_text(
        textwrap.dedent("""
        import json
        import app

        def test_loads_config(strongroom_env):
            strongroom_env.client().create_secret(Name="app/config", SecretString=json.dumps({"db": "x"}))
            assert app.load_config() == {"db": "x"}

        def test_each_test_starts_empty(strongroom):
            assert strongroom.client().list_secrets()["SecretList"] == []
    """)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTEST_"))}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
