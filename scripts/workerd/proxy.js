// A minimal JavaScript Worker for comparison (scripts/bench-workerd.py).
// The least a Worker in front of the mock can do: forward the request and stream the answer back.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    return fetch(env.UPSTREAM + url.pathname, { method: request.method, headers: request.headers, body: request.body });
  },
};
