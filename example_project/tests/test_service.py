"""A tiny web service (busybox httpd), held to what a service promises: run as shipped, it answers
on its port, and its own HEALTHCHECK says healthy. The port is published on 127.0.0.1 only."""

import re

import pytest

from pytest_slimimage import assert_serves, image_fixture

service = image_fixture(".", dockerfile="Dockerfile.service")


@pytest.mark.slimimage(
    serves={"port": 8080, "http": "/", "body": "hello world"}, healthy=True, exec_form=True, max_size="5MB"
)
def test_service_answers_and_is_healthy(service):
    pass


def test_service_logs_each_request(service):
    result = assert_serves(service, 8080, http="/index.html", status=200, log=re.compile(r"response:200"), within=10)
    assert result.details["status"] == 200
