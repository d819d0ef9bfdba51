/**
 * Prometheus metrics of a tool service, rendered in the text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/).
 */

/** Upper bounds of the invoke latency histogram, in seconds. */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Counters and the latency histogram of one service. */
export class ServiceMetrics {
  private readonly started = Date.now();
  private readonly requests = new Map<string, number>();
  private errors = 0;
  private readonly buckets = LATENCY_BUCKETS.map(() => 0);
  private count = 0;
  private running = 0;
  private queued = 0;
  private sum = 0;

  constructor(private readonly toolId: string) {}

  /** Counts one finished request. `status` ≥ 500 also counts as an error. */
  request(path: string, status: number): void {
    const key = `${path}\u0000${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    if (status >= 500) this.errors++;
  }

  /** Sets the number of tool runs in progress and of requests waiting for a slot. */
  inFlight(running: number, queued: number): void {
    this.running = running;
    this.queued = queued;
  }

  /** Records the duration of one tool run, in seconds. */
  observe(seconds: number): void {
    this.count++;
    this.sum += seconds;
    for (const [i, le] of LATENCY_BUCKETS.entries()) if (seconds <= le) this.buckets[i]++;
  }

  /** Seconds since the service started. */
  uptimeSeconds(): number {
    return (Date.now() - this.started) / 1000;
  }

  /** The metrics in Prometheus text format. */
  render(): string {
    const t = `tool_id="${this.toolId}"`;
    const lines = [
      "# HELP tool_requests_total HTTP requests answered, by path and status code.",
      "# TYPE tool_requests_total counter",
    ];
    for (const [key, n] of [...this.requests].sort()) {
      const [path, status] = key.split("\u0000");
      lines.push(`tool_requests_total{${t},path="${path}",status="${status}"} ${n}`);
    }
    lines.push(
      "# HELP tool_errors_total Requests that ended in a server-side error (status 5xx).",
      "# TYPE tool_errors_total counter",
      `tool_errors_total{${t}} ${this.errors}`,
      "# HELP tool_uptime_seconds Seconds since the service started.",
      "# TYPE tool_uptime_seconds gauge",
      `tool_uptime_seconds{${t}} ${this.uptimeSeconds().toFixed(3)}`,
      "# HELP tool_invokes_in_flight Tool runs in progress.",
      "# TYPE tool_invokes_in_flight gauge",
      `tool_invokes_in_flight{${t}} ${this.running}`,
      "# HELP tool_invokes_queued Requests waiting for a free slot (MAX_CONCURRENT_INVOKES).",
      "# TYPE tool_invokes_queued gauge",
      `tool_invokes_queued{${t}} ${this.queued}`,
      "# HELP tool_invoke_duration_seconds Time to run the tool for /api/invoke.",
      "# TYPE tool_invoke_duration_seconds histogram",
    );
    for (const [i, le] of LATENCY_BUCKETS.entries())
      lines.push(`tool_invoke_duration_seconds_bucket{${t},le="${le}"} ${this.buckets[i]}`);
    lines.push(
      `tool_invoke_duration_seconds_bucket{${t},le="+Inf"} ${this.count}`,
      `tool_invoke_duration_seconds_sum{${t}} ${this.sum.toFixed(6)}`,
      `tool_invoke_duration_seconds_count{${t}} ${this.count}`,
    );
    return `${lines.join("\n")}\n`;
  }
}
