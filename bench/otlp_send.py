"""Sends REQUESTS exports of POINTS data points each with the OpenTelemetry
Python SDK's own OTLP exporter (http or grpc), as fast as it goes, and
prints the points it sent, the seconds it took and the request's size.

usage: otlp_send.py http|grpc ENDPOINT REQUESTS POINTS
"""

import sys
import time

from opentelemetry.sdk.metrics.export import (AggregationTemporality, Metric, MetricsData, NumberDataPoint,
                                              ResourceMetrics, ScopeMetrics, Sum)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

protocol, endpoint, requests, points = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if protocol == "http":
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    exporter = OTLPMetricExporter(endpoint=endpoint)
else:
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    exporter = OTLPMetricExporter(endpoint=endpoint, insecure=True)

now = time.time_ns()
# 100 counters of points/100 series each, three attributes a point.
metrics = [
    Metric(name=f"http.server.requests.{m}", description="", unit="1",
           data=Sum(data_points=[NumberDataPoint(attributes={"route": f"/api/v{i}", "method": "GET", "code": "200"},
                                                 start_time_unix_nano=now, time_unix_nano=now + i, value=i,
                                                 exemplars=[])
                                 for i in range(points // 100)],
                    aggregation_temporality=AggregationTemporality.CUMULATIVE, is_monotonic=True))
    for m in range(100)
]
data = MetricsData(resource_metrics=[ResourceMetrics(
    resource=Resource.create({"service.name": "bench", "host.name": "bench-host"}),
    scope_metrics=[ScopeMetrics(scope=InstrumentationScope("bench"), metrics=metrics, schema_url="")],
    schema_url="")])
t0 = time.monotonic()
for _ in range(requests):
    r = exporter.export(data)
    if r.name != "SUCCESS":
        sys.exit(f"export failed: {r}")
secs = time.monotonic() - t0
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
print(requests * points, f"{secs:.3f}", len(encode_metrics(data).SerializeToString()))
