"""An OTLP receiver made of the OpenTelemetry Python packages: decodes each
request with opentelemetry-proto and writes its data points to OUT, one
JSON object a line. Prints "ready" once it listens.

usage: otlp_capture.py http|grpc PORT OUT
"""

import gzip
import json
import sys
from concurrent import futures
from http.server import BaseHTTPRequestHandler, HTTPServer

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as svc

protocol, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def attrs(kvs):
    return {kv.key: kv.value.string_value for kv in kvs}


def record(req):
    with open(out, "a") as f:
        for rm in req.resource_metrics:
            resource = attrs(rm.resource.attributes)
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    data = getattr(m, kind)
                    for p in data.data_points:
                        which = p.WhichOneof("value")
                        f.write(json.dumps({
                            "name": m.name,
                            "data": kind,
                            "temporality": getattr(data, "aggregation_temporality", 0),
                            "monotonic": getattr(data, "is_monotonic", False),
                            "value": getattr(p, which),
                            "int": which == "as_int",
                            "attributes": attrs(p.attributes),
                            "resource": resource,
                            "scope": sm.scope.name,
                            "time": p.time_unix_nano,
                        }) + "\n")


if protocol == "http":

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            req = svc.ExportMetricsServiceRequest()
            req.ParseFromString(body)
            record(req)
            answer = svc.ExportMetricsServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", port), Handler)
    print("ready", flush=True)
    server.serve_forever()
else:
    import grpc
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as rpc

    class Service(rpc.MetricsServiceServicer):
        def Export(self, request, context):
            record(request)
            return svc.ExportMetricsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    rpc.add_MetricsServiceServicer_to_server(Service(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()
