/**
 * An hls.js loader that fails over between edges without the player noticing much.
 *
 * Every request (playlists and segments) is sent to the edge currently in use: the URL's
 * scheme+host+port is swapped for that edge's, the path stays (all edges serve the same
 * versioned URL space, and a signed-URL token rides in the path). When a request fails in a
 * way another edge could fix (connection refused or reset: status 0; a 5xx; a timeout), the
 * loader asks `edges.failover()` for the next edge from steering's ranked list and sends the
 * same request there, before hls.js ever sees an error. hls.js itself would not retry a
 * status 0 (it takes it for CORS), so without this a dead edge is a fatal error.
 *
 * `edges` is the page's edge book: { rewrite(url) → url, failover(failedUrl, why) → Promise<bool> }.
 */
export function failoverLoaderClass(Hls, edges, maxAttempts = 4) {
  const Base = Hls.DefaultConfig.loader

  return class FailoverLoader {
    constructor(config) {
      this.hlsConfig = config
      // hls.js reads loader.stats before load(); every attempt shares this one object.
      this.inner = new Base(config)
      this.stats = this.inner.stats
      this.context = null
      this.aborted = false
    }

    load(context, config, callbacks) {
      this.context = context
      this.attempt(context, config, callbacks, 1)
    }

    attempt(context, config, callbacks, n) {
      if (this.aborted) return
      context.url = edges.rewrite(context.url)
      let inner = this.inner
      if (n > 1) {
        inner.destroy()
        inner = new Base(this.hlsConfig)
        const st = this.stats
        st.loading = { start: 0, first: 0, end: 0 }
        st.loaded = 0
        st.aborted = false
        st.retry = n - 1
        inner.stats = st
        this.inner = inner
      }
      const retry = (why, pass) => {
        if (this.aborted || n >= maxAttempts) return pass()
        edges.failover(context.url, why).then(
          (moved) => (moved && !this.aborted ? this.attempt(context, config, callbacks, n + 1) : pass()),
          () => pass(),
        )
      }
      inner.load(context, config, {
        onSuccess: (...a) => callbacks.onSuccess(...a),
        onProgress: callbacks.onProgress ? (...a) => callbacks.onProgress(...a) : undefined,
        onAbort: callbacks.onAbort ? (...a) => callbacks.onAbort(...a) : undefined,
        onError: (error, ctx, details, stats) => {
          const code = error?.code ?? 0
          if (code === 0 || code >= 500)
            retry(`HTTP ${code || 'connection failed'}`, () => callbacks.onError(error, ctx, details, stats))
          else callbacks.onError(error, ctx, details, stats)
        },
        onTimeout: (stats, ctx, details) => retry('timeout', () => callbacks.onTimeout(stats, ctx, details)),
      })
    }

    abort() {
      this.aborted = true
      this.inner?.abort()
    }

    destroy() {
      this.aborted = true
      this.inner?.destroy()
      this.inner = null
    }

    getCacheAge() {
      return this.inner?.getCacheAge ? this.inner.getCacheAge() : null
    }

    getResponseHeader(name) {
      return this.inner?.getResponseHeader ? this.inner.getResponseHeader(name) : null
    }
  }
}
