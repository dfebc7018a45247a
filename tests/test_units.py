import pytest

from il2als.errors import UnitError
from il2als.inputs import Q_, dose_to_iu, quantity, to_unit, ureg


def test_iu_and_miu_are_one_activity_dimension():
    assert Q_(2, "MIU").to("IU").magnitude == pytest.approx(2e6)
    assert Q_(1, "IU").dimensionality == ureg.MIU.dimensionality


def test_aldesleukin_mass_converts_with_the_label_specific_activity():
    # Proleukin label: 18 MIU per 1.1 mg -> 2 MIU is about 122 ug
    assert dose_to_iu("122 ug") == pytest.approx(2e6, rel=1e-3)
    assert dose_to_iu("1.1 mg") == pytest.approx(18.04e6, rel=1e-3)


def test_specific_activity_is_overridable():
    assert dose_to_iu("1 mg", specific_activity=Q_(10, "MIU/mg")) == pytest.approx(10e6)


def test_per_area_doses_need_and_use_the_body_surface_area():
    assert dose_to_iu("1 MIU/m**2", body_surface_area="1.9 m**2") == pytest.approx(1.9e6)
    with pytest.raises(UnitError, match="body_surface_area"):
        dose_to_iu("1 MIU/m**2")


@pytest.mark.parametrize("bad", ["2 kg*m", "3 day", "5 pg/mL"])
def test_doses_of_the_wrong_dimension_are_rejected(bad):
    with pytest.raises(UnitError, match="dimension"):
        dose_to_iu(bad)


def test_to_unit_rejects_missing_units_and_wrong_dimensions():
    assert to_unit("1 hour", "day") == pytest.approx(1 / 24)
    with pytest.raises(UnitError, match="no unit"):
        quantity(3.0)
    with pytest.raises(UnitError, match="convertible"):
        to_unit("2 MIU", "day")
    with pytest.raises(UnitError, match="cannot read"):
        quantity("2 flurbs")


def test_cells_per_microlitre_and_months():
    assert Q_(50, "cell/uL").to("cell/mL").magnitude == pytest.approx(5e4)
    assert Q_(1, "month").to("day").magnitude == pytest.approx(30.4375)
