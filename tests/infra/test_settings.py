"""infra.settings on its own: the real stack files load, derived names are stable, and
problems are reported as one line naming the file and the key."""
from __future__ import annotations

import copy

import pytest

from infra.settings import (
    SERVICES,
    ConfigError,
    Names,
    load_stack_settings,
    parse_stack_settings,
    read_alerts_file,
    read_stack_file,
)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_real_stack_files_load(stack: str):
    settings = load_stack_settings(stack)
    assert settings.stack == stack
    assert settings.source == f"Pulumi.{stack}.yaml"
    assert settings.protect is (stack == "prod")


def test_derived_names_are_the_documented_contract():
    names = Names.derive("acme-prod", "prod")
    assert names.uploads_bucket == "acme-prod-prod-uploads"
    assert names.uploads_topic == "prod-uploads"
    assert names.extractor_subscription == "prod-uploads-extractor"
    assert names.dead_letter_topic == "prod-uploads-dead-letter"
    assert names.dead_letter_subscription == "prod-uploads-dead-letter-inspect"
    assert names.database_name == "print_files"
    assert names.namespace == "print-platform"
    assert names.service_accounts == {"files-api": "prod-files-api", "extractor": "prod-extractor"}
    assert names.kubernetes_service_accounts == {s: s for s in SERVICES}
    assert names.database_users["extractor"] == "prod-extractor@acme-prod.iam"
    assert names.service_account_email("files-api", "acme-prod") == "prod-files-api@acme-prod.iam.gserviceaccount.com"
    for account in names.service_accounts.values():
        assert 6 <= len(account) <= 30  # IAM account id limits


def test_pubsub_settings_in_api_form():
    ps = load_stack_settings("prod").pubsub
    assert ps.model_dump().keys() == {
        "ack_deadline_seconds", "max_delivery_attempts", "message_retention_duration",
        "minimum_backoff", "maximum_backoff"}
    assert ps.seconds(ps.maximum_backoff) <= 600


def test_engine_form_values_are_decoded():
    """Under the engine, structured values arrive as JSON strings and scalars as strings."""
    import json

    config, _ = read_stack_file("dev")
    engine = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    assert engine["print-platform:protect"] == "false"
    settings = parse_stack_settings("dev", engine, read_alerts_file("dev"))
    assert settings == load_stack_settings("dev")


def test_every_problem_is_reported_one_line_each():
    config, _ = read_stack_file("dev")
    config = copy.deepcopy(config)
    config["print-platform:database"].update(diskSizeGb="x", availability="HA")
    with pytest.raises(ConfigError) as info:
        parse_stack_settings("dev", config, read_alerts_file("dev"))
    assert [line.split(": ")[1] for line in info.value.problems] == [
        "print-platform:database.availability", "print-platform:database.diskSizeGb"]
    assert str(info.value) == "\n".join(info.value.problems)


def test_bad_stack_name():
    with pytest.raises(ConfigError, match="stack name"):
        load_stack_settings("Prod_1")


def test_missing_stack_file(tmp_path):
    with pytest.raises(ConfigError, match=r"^Pulumi\.dev\.yaml: file not found"):
        load_stack_settings("dev", tmp_path)


def test_provider_keys_of_other_namespaces_are_left_to_the_providers():
    config, _ = read_stack_file("dev")
    config = dict(config, **{"gcp:impersonateServiceAccount": "deployer@p.iam.gserviceaccount.com",
                             "kubernetes:enableServerSideApply": "true"})
    assert parse_stack_settings("dev", config, read_alerts_file("dev")).project == "print-platform-dev"


def test_engine_config_is_read_like_the_pulumi_engine_passes_it(monkeypatch):
    """Under `pulumi up` the language host passes config as PULUMI_CONFIG (JSON, values as strings)."""
    import json

    import pulumi

    from infra.program import settings_from_engine

    config, _ = read_stack_file("prod")
    engine = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    pulumi.runtime.set_all_config({}, [])
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(engine))
    assert settings_from_engine(stack="prod") == load_stack_settings("prod")
    engine["print-platform:database"] = json.dumps(dict(config["print-platform:database"], availability="ZONAL"))
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(engine))
    with pytest.raises(ConfigError, match=r"^Pulumi\.prod\.yaml: print-platform:database\.availability: "):
        settings_from_engine(stack="prod")


def test_main_reports_a_config_error_as_one_line_run_error(monkeypatch):
    """Under the engine a ConfigError becomes pulumi.RunError (printed without a traceback)."""
    import pulumi

    from infra import program

    def bad(*_args, **_kwargs):
        raise ConfigError("Pulumi.dev.yaml: gcp:region: unknown region 'x'")

    def never(*_args, **_kwargs):
        raise AssertionError("build() must not run after a config error")

    monkeypatch.setattr(program, "settings_from_engine", bad)
    monkeypatch.setattr(program, "build", never)
    with pytest.raises(pulumi.RunError, match=r"^Pulumi\.dev\.yaml: gcp:region: unknown region 'x'$"):
        program.main()
