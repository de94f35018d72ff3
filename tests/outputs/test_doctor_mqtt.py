"""`aituber doctor` against a real mosquitto broker (the fixture lives with the MQTT tests)."""

from __future__ import annotations

import pytest

from aituber.doctor import OK, DoctorOptions, check_mqtt
from tests.outputs.conftest import free_port
from tests.test_doctor import doctor


def test_running_broker_is_ok(mosquitto):
    check = check_mqtt(DoctorOptions(mqtt_host="127.0.0.1", mqtt_port=mosquitto.port, timeout_s=5))
    assert check.status == OK and str(mosquitto.port) in check.detail


@pytest.mark.slow
def test_doctor_exits_0_when_nothing_fails(tiny_model, mosquitto):
    result = doctor("--model", str(tiny_model), "--mqtt-host", "127.0.0.1", "--mqtt-port", str(mosquitto.port),
                    "--port", str(free_port()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert not [l for l in result.stdout.splitlines() if l.startswith("FAIL")]
    assert "OK   mqtt: broker at" in result.stdout and result.stdout.rstrip().endswith("0 FAIL: ready")

