"""The production environment documented in `.env.example` and the README passes Django's
deployment checks; the secret key is required where several hosts may serve, and generated
where only one can (the zero-configuration `make run`)."""

import re
import secrets
import stat

from tests.hardening.support import ROOT, manage

PLACEHOLDER = re.compile(r"<[^>]*>")


def documented_production_environment() -> dict[str, str]:
    """The production block of `.env.example`, each `<...>` replaced by a random value."""
    text = (ROOT / ".env.example").read_text()
    block = text.split("# --- Production ---", 1)[1].split("# --- end of production ---", 1)[0]
    environment = {}
    for line in block.splitlines():
        assignment = re.fullmatch(r"# ([A-Z_]+)=(.*)", line)
        if assignment:
            name, value = assignment.groups()
            environment[name] = PLACEHOLDER.sub(lambda _: secrets.token_urlsafe(50), value)
    return environment


def test_the_production_block_sets_every_https_setting_and_the_readme_explains_each():
    environment = documented_production_environment()
    readme = (ROOT / "README.md").read_text()

    assert {
        "DATABASE_URL",
        "SECRET_KEY",
        "SECURE_SSL_REDIRECT",
        "SECURE_PROXY_SSL_HEADER",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_HSTS_SECONDS",
    } <= environment.keys()
    assert [name for name in environment if f"`{name}" not in readme] == []


def test_check_deploy_reports_nothing_with_the_documented_production_environment(tmp_path):
    result = manage(
        "check", "--deploy", "--fail-level", "DEBUG",
        data_dir=tmp_path, env=documented_production_environment(),
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_does_complain_without_the_https_settings(tmp_path):
    environment = documented_production_environment()
    for name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "SECURE_HSTS_SECONDS"):
        del environment[name]

    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", data_dir=tmp_path, env=environment
    )

    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012"):
        assert warning in result.stderr


def test_production_without_a_secret_key_fails_to_start_with_a_clear_error(tmp_path):
    environment = {**documented_production_environment(), "SECRET_KEY": ""}

    for command in (["check"], ["shell", "-c", "import credits_project.wsgi"]):
        result = manage(*command, data_dir=tmp_path, env=environment)

        assert result.returncode != 0
        assert "ImproperlyConfigured: SECRET_KEY is not set" in result.stderr
        assert "same random value" in result.stderr
    assert not (tmp_path / "secret_key").exists()


def test_debug_with_a_database_server_keeps_a_generated_key(tmp_path):
    environment = {"DATABASE_URL": "postgres://credits@127.0.0.1:9/credits", "DEBUG": "true"}

    result = manage("check", data_dir=tmp_path, env=environment)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "secret_key").exists()


def test_with_no_configuration_the_service_migrates_and_runs_on_a_private_generated_key(
    tmp_path,
):
    """What `make run` does first, with nothing configured: DEBUG off, no key, no database."""
    migrate = manage("migrate", "--noinput", "-v0", data_dir=tmp_path)
    check = manage("check", data_dir=tmp_path)

    assert migrate.returncode == 0, migrate.stderr
    assert check.returncode == 0, check.stderr
    key_file = tmp_path / "secret_key"
    assert len(key_file.read_text().strip()) >= 50
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
