import math

import numpy as np
import pytest

from il2als.errors import RegimenError, UnitError
from il2als.inputs import (NAMED, Regimen, bolus, course, custom, cycles, named, none, parse_regimen, read_regimen_csv,
                           regimen)


def test_mirocals_has_90_doses_over_18_cycles():
    r = named("mirocals")
    assert len(r) == 90
    t = r.times()
    assert t[0] == 0 and t[4] == 4 and t[5] == 28 and t[-1] == 17 * 28 + 4
    assert np.all(r.amounts_iu(1.9, 16.4e6) == 2e6)


def test_sentences_parse_into_the_objects_the_factories_build():
    assert parse_regimen("2 MIU daily for 5 days every 28 days, 18 cycles") == cycles("2 MIU", 5, "28 days", 18)
    assert parse_regimen("1 MIU daily for 5 days") == course("1 MIU", 5)
    assert parse_regimen("0.26 MIU/m**2 every 3 days for 10 doses") == course("0.26 MIU/m**2", 10, "3 day")
    assert parse_regimen("0.26 MIU/m^2 every 3 days for 4 weeks") == course("0.26 MIU/m**2", 9, "3 day")
    assert parse_regimen("2 MIU once at 1 day") == bolus("2 MIU", "1 day")
    assert parse_regimen("122 ug once") == bolus("0.122 mg")
    assert parse_regimen("none") == none()


def test_named_regimens_all_resolve_and_describe_themselves():
    for name in NAMED:
        r = named(name)
        assert r.description
    assert len(named("imodals-1miu")) == 15 and named("imodals-1miu").amounts_iu(1.9, 16.4e6)[0] == 1e6
    assert len(named("placebo")) == 0


def test_per_area_and_mass_doses_resolve_for_the_patient():
    r = parse_regimen("1 MIU/m**2 once")
    assert r.amounts_iu(1.8, 16.4e6)[0] == pytest.approx(1.8e6)
    assert parse_regimen("122 ug once").amounts_iu(1.9, 16.4e6)[0] == pytest.approx(2.0008e6)


@pytest.mark.parametrize(
    "text, err, match",
    [
        ("-2 MIU once", RegimenError, "positive"),
        ("nan MIU once", RegimenError, "finite"),
        ("2 kg daily for 5 days", RegimenError, "ceiling"),
        ("2 day once", UnitError, "dimension"),
        ("2 MIU daily for 5 days every 3 days, 2 cycles", RegimenError, "longer than one course"),
        ("mirocal", RegimenError, "did you mean 'mirocals'"),
    ],
)
def test_bad_regimens_get_one_line_errors(text, err, match):
    with pytest.raises(err, match=match) as exc:
        regimen(text)
    assert "\n" not in str(exc.value)


def test_csv_event_tables_carry_units_in_headers(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("# a test\ntime [h],amount [MIU]\n0,2\n24,2\n48,1.5\n")
    r = read_regimen_csv(p)
    assert r == custom(["0 h", "24 h", "48 h"], ["2 MIU", "2 MIU", "1.5 MIU"])
    assert np.allclose(r.times(), [0, 1, 2])
    # round trip through the writer
    q = tmp_path / "q.csv"
    q.write_text(r.to_csv())
    assert read_regimen_csv(q) == r


@pytest.mark.parametrize(
    "body, match",
    [
        ("time [h],amount [MIU]\n24,2\n0,2\n", "sort the rows"),
        ("time [h],amount [MIU]\n0,2\n0,2\n", "combine"),
        ("time [h],amount [MIU]\n0,-2\n", "positive"),
        ("time [h],amount [MIU]\n0,nan\n", "NaN"),
        ("time [h],amount [kg*m]\n0,2\n", "dimension"),
        ("time,amount\n0,2\n", "name \\[unit\\]"),
        ("time [h],amount [MIU]\n", "no dose rows"),
        ("", "empty"),
        ("time [h],amount [MIU]\n0,abc\n", "needs a number"),
        ("time [h],amount [MIU]\n-1,2\n", "negative"),
    ],
)
def test_bad_csv_tables_are_rejected(tmp_path, body, match):
    p = tmp_path / "bad.csv"
    p.write_text(body)
    with pytest.raises((RegimenError, UnitError), match=match):
        read_regimen_csv(p)


def test_regimen_objects_validate_themselves():
    from il2als.inputs import Dose

    with pytest.raises(RegimenError):
        Dose(-1.0, 1e6)
    with pytest.raises(RegimenError):
        Dose(0.0, math.nan)
    with pytest.raises(RegimenError, match="not sorted"):
        Regimen((Dose(2.0, 1e6), Dose(1.0, 1e6)))


def test_mass_typed_for_miu_converts_but_warns():
    import pytest

    from il2als.inputs import DoseWarning, parse_regimen

    with pytest.warns(DoseWarning, match="did you mean '2 MIU'"):
        reg = parse_regimen("2 mg once")
    assert reg.amounts_iu(1.9, 1.64e7)[0] == pytest.approx(32.8e6)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DoseWarning)
        assert parse_regimen("122 ug once").amounts_iu(1.9, 1.64e7)[0] == pytest.approx(2.0e6, rel=1e-3)
