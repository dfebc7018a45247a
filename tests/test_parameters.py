import tomllib
import warnings
from importlib import resources

import pytest

from il2als.compiler import default_model
from il2als.errors import ParameterError
from il2als.inputs import PlausibilityWarning, load_parameters


def test_handset_values_are_pinned_in_canonical_units():
    ps = load_parameters("handset")
    assert ps.value("clearance") == pytest.approx(120 * 1440)  # 120 mL/min (Konrad 1990) in mL/day
    assert ps.value("ka") == pytest.approx(0.21 * 24)  # ln2/3.3 h (Piscitelli 1997) in 1/day
    assert ps.value("absorption_lag") == pytest.approx(27 / 1440)
    assert ps.value("aldesleukin_specific_activity") == pytest.approx(16.4e6)  # IU/mg, Proleukin label
    assert ps.value("treg_selectivity") == pytest.approx(20)  # Rosenzwajg 2015
    assert ps.value("volume") == pytest.approx(14700)


def test_fast_profile_has_the_published_treg_deficit():
    slow, fast = load_parameters("slow"), load_parameters("fast")
    deficit = 1 - fast.value("treg_production") / slow.value("treg_production")
    assert deficit == pytest.approx(0.31, abs=0.01)  # Beers 2011: 31% fewer Tregs in rapid progressors


@pytest.mark.parametrize("name", ["handset.toml", "calibrated.toml", "profiles/slow.toml", "profiles/fast.toml"])
def test_every_entry_has_unit_source_range_and_description(name):
    data = tomllib.loads((resources.files("il2als.params") / name).read_text())
    refs = tomllib.loads((resources.files("il2als.params") / "handset.toml").read_text())["references"]
    for pname, e in data["parameters"].items():
        assert {"value", "unit", "source", "range"} <= set(e), pname
        assert "description" in e or name == "calibrated.toml", pname  # calibrated entries inherit theirs
        src = e["source"]
        assert src.startswith(("assumed:", "derived:", "calibrated:")) or all(k.strip() in refs for k in src.split(",")), (pname, src)


def test_references_behind_a_set_are_listed():
    cited = load_parameters("fast").cited()
    assert "Konrad1990" in cited and "Beers2011" in cited
    assert all(isinstance(v, str) and len(v) > 20 for v in cited.values())


def _write(tmp_path, body, base=True):
    p = tmp_path / "p.toml"
    head = '[meta]\nname = "t"\n' + ('base = "default"\n' if base else "")
    p.write_text(head + "[parameters]\n" + body)
    return str(p)


@pytest.mark.parametrize(
    "body, match",
    [
        ('clearence = { value = 1, unit = "mL/min", range = [0, 2], source = "assumed: x" }', "did you mean 'clearance'"),
        ('clearance = { value = 1, unit = "kg", range = [0, 2], source = "assumed: x" }', "dimension"),
        ('clearance = { value = 1, unit = "flurb", range = [0, 2], source = "assumed: x" }', "not a unit"),
        ('clearance = { value = -1, unit = "mL/min", range = [0, 2], source = "assumed: x" }', "non-physical"),
        ('bioavailability = { value = 1.5, unit = "", range = [0, 2], source = "assumed: x" }', "non-physical"),
        ('clearance = { value = nan, unit = "mL/min", range = [0, 2], source = "assumed: x" }', "not finite"),
        ('clearance = { value = 1, unit = "mL/min", range = [0, 2] }', "missing 'source'"),
        ('clearance = { value = 1, unit = "mL/min", source = "assumed: x" }', "range"),
        ('clearance = { value = 1, unit = "mL/min", range = [0, 2], source = "Nobody2020" }', "not in \\[references\\]"),
        ('clearance = { value = 1, unit = "mL/min", range = [0, 2], source = "assumed: x", colour = 1 }', "unknown field"),
        ("clearance = [", "not valid TOML"),
    ],
)
def test_bad_parameter_files_get_one_line_errors(tmp_path, body, match):
    with pytest.raises(ParameterError, match=match) as exc:
        load_parameters(_write(tmp_path, body))
    assert "\n" not in str(exc.value)


def test_a_file_without_base_must_be_complete(tmp_path):
    with pytest.raises(ParameterError, match="missing parameter"):
        load_parameters(_write(tmp_path, 'ka = { value = 1, unit = "1/h", range = [0, 2], source = "assumed: x" }', base=False))


def test_unknown_set_names_suggest_the_closest():
    with pytest.raises(ParameterError, match="did you mean 'slow'"):
        load_parameters("slwo")


def test_implausible_but_physical_values_warn():
    with pytest.warns(PlausibilityWarning, match="ec50_treg"):
        load_parameters("default").updated(ec50_treg="100 IU/mL")


def test_updated_converts_units_and_keeps_the_rest():
    ps = load_parameters("default")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        q = ps.updated(clearance="8 L/hour")
    assert q.value("clearance") == pytest.approx(192000)
    assert q.value("ka") == ps.value("ka")
    assert q.vector(default_model()).shape == (len(default_model().parameter_names),)


def test_default_is_the_calibrated_set_based_on_the_handset():
    d, h, c = load_parameters("default"), load_parameters("handset"), load_parameters("calibrated")
    assert d.name == "calibrated" and d.files == c.files and d.files[0] == "params/handset.toml"
    changed = [n for n in d.values if d.values[n] != h.values[n]]
    assert changed and all(d.values[n].source.startswith("calibrated:") for n in changed)
    assert d.value("clearance") == h.value("clearance")  # not fitted: inherited
