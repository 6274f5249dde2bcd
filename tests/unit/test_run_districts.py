"""The district side of ``sharebus run`` and the federation service's settings (pure parts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sharebus_cli.run_districts import DistrictsError, city_catalogue_with
from sharebus_core.catalogue import load_catalogue
from sharebus_core.settings import REPO_ROOT
from sharebus_federation.settings import FederationSettings, FederationSettingsError

DEMO = REPO_ROOT / "schemas"
YUBEI = REPO_ROOT / "catalogue-districts" / "yubei"


def test_the_city_catalogue_names_the_district_without_copying_the_demo_catalogue(tmp_path: Path) -> None:
    out = city_catalogue_with(DEMO, "yubei", YUBEI, tmp_path / "city")
    city = load_catalogue(out)
    demo = load_catalogue(DEMO)
    assert set(city.data_classes) == set(demo.data_classes) | {"301002001/000001"}  # only the federated class
    assert city.level_of("YBAMR") == ("district", "yubei")
    assert city.level_of("AMR") == ("city", "")
    assert (out / "avro").is_symlink()
    assert (out / "avro").resolve() == (DEMO / "avro").resolve()
    # Written again on the next run, from the demo catalogue as it is then.
    assert load_catalogue(city_catalogue_with(DEMO, "yubei", YUBEI, tmp_path / "city")).data_classes.keys() == (
        city.data_classes.keys()
    )


def test_a_catalogue_that_already_names_districts_is_refused(tmp_path: Path) -> None:
    once = city_catalogue_with(DEMO, "yubei", YUBEI, tmp_path / "once")
    with pytest.raises(DistrictsError, match="already names districts"):
        city_catalogue_with(once, "yubei", YUBEI, tmp_path / "twice")


def test_the_district_catalogue_federates_one_class_and_keeps_the_other() -> None:
    district = load_catalogue(YUBEI)
    assert [c.code for c in district.federated_up()] == ["301002001/000001"]
    assert "301002002/000001" in district.data_classes


def test_the_federation_service_names_every_missing_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CITY_BOOTSTRAP", "DISTRICT_REGISTRY_URL"):
        monkeypatch.delenv(f"SHAREBUS_FEDERATION_{name}", raising=False)
    settings = FederationSettings(
        city_credentials_file=Path("/x/mm2.json"),
        city_registry_url="http://127.0.0.1:8081",
        city_registry_credentials_file=Path("/x/operator.json"),
        city_catalogue_dir=Path("/x/city"),
        district_bootstrap="127.0.0.1:9192",
        district_credentials_file=Path("/x/mm2d.json"),
        district_registry_credentials_file=Path("/x/op.json"),
        district_catalogue_dir=Path("/x/yubei"),
    )
    with pytest.raises(FederationSettingsError) as raised:
        settings.service_config()
    assert str(raised.value).endswith("SHAREBUS_FEDERATION_CITY_BOOTSTRAP, SHAREBUS_FEDERATION_DISTRICT_REGISTRY_URL")
    complete = settings.model_copy(update={"city_bootstrap": "127.0.0.1:9092", "district_registry_url": "http://d"})
    config = complete.service_config()
    assert config.city.bootstrap == "127.0.0.1:9092"
    assert config.district.registry_url == "http://d"


FEDERATION_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "federation"


def _district_catalogue(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    """A copy of the federation fixtures' district catalogue, with ``replacements`` made in its text."""
    out = tmp_path / "district"
    out.mkdir()
    (out / "avro").symlink_to(FEDERATION_FIXTURES / "yubei" / "avro")
    text = (FEDERATION_FIXTURES / "yubei" / "catalogue.yaml").read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    (out / "catalogue.yaml").write_text(text, encoding="utf-8")
    return out


def _service_settings(district_dir: Path) -> FederationSettings:
    missing = Path("/nonexistent/credentials.json")
    return FederationSettings(
        district="yubei",
        city_bootstrap="127.0.0.1:9092",
        city_credentials_file=missing,
        city_registry_url="http://127.0.0.1:8081",
        city_registry_credentials_file=missing,
        city_catalogue_dir=FEDERATION_FIXTURES / "city",
        district_bootstrap="127.0.0.1:9192",
        district_credentials_file=missing,
        district_registry_url="http://127.0.0.1:8181",
        district_registry_credentials_file=missing,
        district_catalogue_dir=district_dir,
    )


@pytest.mark.parametrize(
    ("replacement", "foreign"),
    [
        # The district names the city's tax system as its own: MirrorMaker 2 would read its deliveries.
        (("code: yb-tax", "code: tax-levy"), "ns.dlv.tax-levy"),
        # The district federates a class under the code of the city's penalties: it would write their source.
        (('code: "301002001/000001"', 'code: "301001002/000001"'), "ns.src.301001002.000001"),
    ],
)
def test_the_federation_service_refuses_a_district_catalogue_claiming_the_citys_topics(
    tmp_path: Path, replacement: tuple[str, str], foreign: str
) -> None:
    from sharebus_federation.plan import NotTheDistricts
    from sharebus_federation.service import FederationService

    settings = _service_settings(_district_catalogue(tmp_path, replacement)).model_copy(update={"namespace": "ns"})
    with pytest.raises(NotTheDistricts, match=foreign.replace(".", r"\.")):
        FederationService(settings)


def test_the_plan_the_city_gives_the_district_is_accepted() -> None:
    from sharebus_federation.plan import check_accepted, plan_for

    city = load_catalogue(FEDERATION_FIXTURES / "city")
    plan = plan_for("ns", "yubei", load_catalogue(FEDERATION_FIXTURES / "yubei"))
    assert check_accepted(plan, city) is plan
    assert plan.up == ("ns.src.301002001.000001",)
    assert set(plan.down) == {"ns.dlv.yb-amr", "ns.dlv.yb-tax"}


def test_a_class_the_district_shares_with_nobody_is_not_federated(tmp_path: Path) -> None:
    # A not-shared class goes to nobody: mirrored up, its records would sit on the city's cluster
    # (the city's router denying each one), out of the district that holds the legal basis for them.
    from sharebus_federation.plan import NotFederable, plan_for

    district = _district_catalogue(tmp_path, ("    share_type: conditional\n", "    share_type: none\n"))
    with pytest.raises(NotFederable, match="301002001/000001"):
        plan_for("ns", "yubei", load_catalogue(district))
