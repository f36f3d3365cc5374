// The part of autocannon's API the load generator uses (the package ships no types).
declare module 'autocannon' {
  interface Histogram { average: number; total: number; p50: number; p99: number; max: number }
  interface Result { requests: Histogram; latency: Histogram; non2xx: number; errors: number; timeouts: number }
  interface Options {
    url: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    connections?: number;
    duration?: number;
  }
  export default function autocannon(options: Options): Promise<Result>;
}
