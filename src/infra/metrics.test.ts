import { describe, expect, it } from "vitest";
import { createHttpMetrics } from "./metrics.ts";

describe("HTTP metrics", () => {
  it("writes the counter and a cumulative histogram per label set in the Prometheus text format", async () => {
    const metrics = createHttpMetrics({ defaultMetrics: false });
    const labels = { method: "POST", route: "/v1/authorize", status: 200 };
    for (const seconds of [0.0005, 0.001, 0.002, 0.3, 9]) {
      metrics.observe(labels, seconds);
    }
    metrics.observe({ method: "GET", route: 'we"ird\\route', status: 404 }, 0.01);
    const text = await metrics.text();
    const l = 'method="POST",route="/v1/authorize",status="200"';
    expect(text).toContain("# TYPE orgplane_http_requests_total counter\n");
    expect(text).toContain(`orgplane_http_requests_total{${l}} 5\n`);
    expect(text).toContain("# TYPE orgplane_http_request_duration_seconds histogram\n");
    // le is "less than or equal": 0.001 falls in the 0.001 bucket.
    expect(text).toContain(`orgplane_http_request_duration_seconds_bucket{le="0.001",${l}} 2\n`);
    expect(text).toContain(`orgplane_http_request_duration_seconds_bucket{le="0.0025",${l}} 3\n`);
    expect(text).toContain(`orgplane_http_request_duration_seconds_bucket{le="0.25",${l}} 3\n`);
    expect(text).toContain(`orgplane_http_request_duration_seconds_bucket{le="0.5",${l}} 4\n`);
    expect(text).toContain(`orgplane_http_request_duration_seconds_bucket{le="5",${l}} 4\n`);
    expect(text).toContain(`orgplane_http_request_duration_seconds_bucket{le="+Inf",${l}} 5\n`);
    expect(text).toContain(`orgplane_http_request_duration_seconds_count{${l}} 5\n`);
    expect(text).toMatch(
      new RegExp(`orgplane_http_request_duration_seconds_sum\\{${l.replace(/[/]/g, "\\/")}\\} 9\\.303`),
    );
    // Label values are escaped.
    expect(text).toContain('route="we\\"ird\\\\route"');
  });
});
