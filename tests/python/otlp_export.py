"""Exports a counter, an up-down counter, a gauge, a histogram and an
exponential histogram with the
OpenTelemetry Python SDK to an OTLP receiver, and says whether the
exporter's export succeeded (exit 0) or not (exit 1).

usage: otlp_export.py http|grpc ENDPOINT [delta]
"""

import sys

from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

protocol, endpoint = sys.argv[1], sys.argv[2]
delta = len(sys.argv) > 3 and sys.argv[3] == "delta"
temporality = {Counter: AggregationTemporality.DELTA} if delta else {}

if protocol == "http":
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    exporter = OTLPMetricExporter(endpoint=endpoint, compression=Compression.Gzip, preferred_temporality=temporality)
else:
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

    exporter = OTLPMetricExporter(endpoint=endpoint, insecure=True, preferred_temporality=temporality)

results = []
export = exporter.export


def recording(*args, **kwargs):
    r = export(*args, **kwargs)
    results.append(r)
    return r


exporter.export = recording
reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
resource = Resource.create({"service.name": "shop", "host.name": "web-07"})
# "sizes" as an exponential histogram.
views = [View(instrument_name="sizes", aggregation=ExponentialBucketHistogramAggregation())]
provider = MeterProvider(resource=resource, metric_readers=[reader], views=views)
meter = provider.get_meter("vane.test")

attrs = {"region": "eu"}
orders = meter.create_counter("orders")
orders.add(3, attrs)
orders.add(4, attrs)
queue = meter.create_up_down_counter("queue")
queue.add(5, attrs)
queue.add(-2, attrs)
meter.create_gauge("temperature").set(21.5, attrs)
latency = meter.create_histogram("latency")
for v in (0.5, 3, 7):
    latency.record(v, attrs)
sizes = meter.create_histogram("sizes")
for v in (1, 2, 4):
    sizes.record(v, attrs)

provider.shutdown()
print(protocol, [str(r) for r in results])
sys.exit(0 if results and all(r.name == "SUCCESS" for r in results) else 1)
