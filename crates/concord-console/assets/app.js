// The Concord console: a client of the /v1 API, nothing more. The API key lives in
// this tab's sessionStorage only (never in a URL, a cookie or a log) and goes out as
// an Authorization header; every permission is the API's to enforce, the page only
// hides what the key may not do. Routes live in the URL's fragment (#/clusters/c3),
// so the server serves one page and links can be shared without the key.
import {
  html,
  render,
  useState,
  useEffect,
  useRef,
} from './vendor/preact-htm.module.js';

// ---------------------------------------------------------------- API client

const KEY_SLOT = 'concord.api-key';
const session = {
  get key() {
    return sessionStorage.getItem(KEY_SLOT);
  },
  set key(value) {
    if (value) sessionStorage.setItem(KEY_SLOT, value);
    else sessionStorage.removeItem(KEY_SLOT);
  },
};

class ApiError extends Error {
  constructor(status, problem) {
    const detail = (problem && (problem.detail || problem.title)) || `HTTP ${status}`;
    const field = problem && problem.field ? ` (field ${problem.field})` : '';
    super(detail + field);
    this.status = status;
    this.problem = problem;
  }
}

async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json', Authorization: `Bearer ${session.key}` };
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text.slice(0, 300) };
    }
  }
  if (response.status === 401) {
    window.dispatchEvent(new CustomEvent('concord:refused', { detail: data && data.detail }));
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** `{ data, error, loading }` of a GET, refetched when `path` or `version` changes. */
function useGet(path, version = 0) {
  const [state, setState] = useState({ loading: true });
  useEffect(() => {
    if (!path) {
      setState({ loading: false });
      return undefined;
    }
    let live = true;
    setState((s) => ({ data: s.data, loading: true }));
    api(path).then(
      (data) => live && setState({ data, loading: false }),
      (error) => live && setState({ error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [path, version]);
  return state;
}

// ---------------------------------------------------------------- routing

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/clusters';
  const at = raw.indexOf('?');
  const path = at < 0 ? raw : raw.slice(0, at);
  const params = new URLSearchParams(at < 0 ? '' : raw.slice(at + 1));
  return { path, params };
}

function useRoute() {
  const [route, setRoute] = useState(parseHash());
  useEffect(() => {
    const onChange = () => setRoute(parseHash());
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

/** `#/path?k=v`, leaving out empty values. */
function link(path, params = {}) {
  const kept = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '');
  const query = new URLSearchParams(kept).toString();
  return `#${path}${query ? `?${query}` : ''}`;
}

// ---------------------------------------------------------------- formatting

const languageNames = (() => {
  try {
    return new Intl.DisplayNames(['en'], { type: 'language' });
  } catch {
    return null;
  }
})();

function languageName(code) {
  if (!code) return 'Unknown language';
  try {
    return (languageNames && languageNames.of(code)) || code;
  } catch {
    return code;
  }
}

function when(ts) {
  if (!ts) return '–';
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return ts;
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

const Langs = ({ langs }) => html`<span class="langs">${(langs || []).map(
  (l) => html`<span class="lang" title=${languageName(l)}>${l}</span>`,
)}</span>`;

const ClusterLink = ({ id, children }) => html`<a href=${link(`/clusters/${id}`)}>${children || id}</a>`;

function ErrorNote({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.status ? `${error.status}: ` : ''}${error.message}</p>`;
}

/** A correction's data as a sentence. */
function describe(kind, data) {
  const list = (v) => (Array.isArray(v) ? v.join(', ') : v);
  switch (kind) {
    case 'merge':
      return html`merged ${list(data.from)} into <${ClusterLink} id=${data.into} />`;
    case 'split':
      return html`split ${list(data.articles)} out of <${ClusterLink} id=${data.from} /> into <${ClusterLink} id=${data.to} />`;
    case 'move':
      return html`moved ${data.article} from <${ClusterLink} id=${data.from} /> to <${ClusterLink} id=${data.to} />`;
    default:
      return JSON.stringify(data);
  }
}

// ---------------------------------------------------------------- sign-in

function SignIn({ reason, onSignedIn }) {
  const [error, setError] = useState(reason);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    const key = new FormData(event.target).get('key').trim();
    if (!key) return;
    setBusy(true);
    session.key = key;
    try {
      const me = await api('/v1/me');
      onSignedIn(me);
    } catch (e) {
      session.key = null;
      setError(e.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<main id="main" class="signin">
    <h1>Concord</h1>
    <p>Cross-lingual news events. Enter an API key to open the console; it is kept in this browser tab only and forgotten when the tab closes.</p>
    <form onSubmit=${submit}>
      <label for="key">API key</label>
      <input id="key" name="key" type="password" autocomplete="off" required autofocus />
      <button type="submit" disabled=${busy}>Open</button>
    </form>
    ${error && html`<p class="error" role="alert">${error}</p>`}
  </main>`;
}

// ---------------------------------------------------------------- cluster list

const LIST_FILTERS = ['q', 'from', 'to', 'lang', 'min_size', 'min_languages', 'sort'];

function ClusterList({ params }) {
  const filters = Object.fromEntries(LIST_FILTERS.map((k) => [k, params.get(k) || '']));
  const cursor = params.get('cursor') || '';
  const query = new URLSearchParams();
  if (filters.q) query.set('q', filters.q);
  if (filters.from) query.set('from', `${filters.from}T00:00:00Z`);
  if (filters.to) query.set('to', `${filters.to}T23:59:59Z`);
  if (filters.lang) query.set('lang', filters.lang);
  if (filters.min_size) query.set('min_size', filters.min_size);
  if (filters.min_languages) query.set('min_languages', filters.min_languages);
  if (filters.sort) query.set('sort', filters.sort);
  if (cursor) query.set('cursor', cursor);
  query.set('limit', '50');
  const { data, error, loading } = useGet(`/v1/clusters?${query}`);

  const submit = (event) => {
    event.preventDefault();
    const form = Object.fromEntries(new FormData(event.target));
    location.hash = link('/clusters', form);
  };
  return html`<h1 tabindex="-1">Clusters</h1>
    <form class="filters" onSubmit=${submit} aria-label="Filter clusters">
      <label>Text, any language <input name="q" type="search" value=${filters.q} placeholder="e.g. sécurité des données" /></label>
      <label>From <input name="from" type="date" value=${filters.from} /></label>
      <label>To <input name="to" type="date" value=${filters.to} /></label>
      <label>Language <input name="lang" value=${filters.lang} size="4" placeholder="any" pattern="[A-Za-z]{2,3}" /></label>
      <label>Min. size <input name="min_size" type="number" min="0" value=${filters.min_size} /></label>
      <label>Min. languages <input name="min_languages" type="number" min="0" value=${filters.min_languages} /></label>
      <label>Sort
        <select name="sort" value=${filters.sort || 'recent'}>
          <option value="recent">Most recent</option>
          <option value="size">Largest</option>
        </select>
      </label>
      <button type="submit">Apply</button>
    </form>
    <${ErrorNote} error=${error} />
    ${loading && !data && html`<p class="loading">Loading…</p>`}
    ${data && html`<table class="list clusters" aria-busy=${loading ? 'true' : 'false'}>
      <thead><tr><th scope="col">Event</th><th scope="col">Size</th><th scope="col">Languages</th><th scope="col">First seen</th><th scope="col">Last seen</th></tr></thead>
      <tbody>
        ${data.clusters.length === 0 && html`<tr><td colspan="5">No cluster matches.</td></tr>`}
        ${data.clusters.map((c) => html`<tr data-cluster=${c.id}>
          <td data-label="Event"><${ClusterLink} id=${c.id}>${c.label || c.id}<//></td>
          <td data-label="Size">${c.size}</td>
          <td data-label="Languages"><${Langs} langs=${c.languages} /></td>
          <td data-label="First seen">${when(c.first_seen)}</td>
          <td data-label="Last seen">${when(c.last_seen)}</td>
        </tr>`)}
      </tbody>
    </table>
    <nav class="pager" aria-label="Pages">
      ${cursor && html`<a href=${link('/clusters', filters)}>First page</a>`}
      ${data.next_cursor && html`<a rel="next" href=${link('/clusters', { ...filters, cursor: data.next_cursor })}>Next page</a>`}
    </nav>`}`;
}

// ---------------------------------------------------------------- a cluster

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22'];

/** Arrivals per UTC day and language, from the members. */
function perDay(members) {
  const langs = [...new Set(members.map((m) => m.lang || '?'))].sort();
  const days = new Map();
  for (const m of members) {
    const day = m.published_at.slice(0, 10);
    if (!days.has(day)) days.set(day, Object.fromEntries(langs.map((l) => [l, 0])));
    days.get(day)[m.lang || '?'] += 1;
  }
  const dates = [...days.keys()].sort();
  return { langs, dates, counts: dates.map((d) => days.get(d)) };
}

function Timeline({ members }) {
  const box = useRef(null);
  const { langs, dates, counts } = perDay(members);
  useEffect(() => {
    const uPlot = window.uPlot;
    if (!box.current || !uPlot || dates.length === 0) return undefined;
    const xs = dates.map((d) => Date.parse(`${d}T12:00:00Z`) / 1000);
    // Stacked bars: each series is drawn from zero to the running total up to its
    // language, largest first, so the later (shorter) bars paint over the lower part.
    const running = langs.map((_, i) => counts.map((c) => langs.slice(0, i + 1).reduce((s, l) => s + c[l], 0)));
    const order = langs.map((_, i) => i).reverse();
    const bars = uPlot.paths.bars({ size: [0.7, 48] });
    const width = Math.max(280, Math.min(box.current.clientWidth || 640, 900));
    const plot = new uPlot(
      {
        width,
        height: 180,
        scales: { x: { time: true, range: [xs[0] - 86400, xs[xs.length - 1] + 86400] }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
        axes: [{}, { label: 'articles', size: 48 }],
        legend: { live: false },
        series: [
          {},
          ...order.map((i) => ({
            label: langs[i],
            fill: PALETTE[i % PALETTE.length],
            stroke: PALETTE[i % PALETTE.length],
            paths: bars,
            points: { show: false },
            value: (u, v, s, idx) => (idx == null ? '' : counts[idx][langs[i]]),
          })),
        ],
      },
      [xs, ...order.map((i) => running[i])],
      box.current,
    );
    return () => plot.destroy();
  }, [members]);
  return html`<figure class="timeline">
    <div ref=${box} class="chart" role="img" aria-label=${`Arrivals per day by language, ${dates[0] || ''} to ${dates[dates.length - 1] || ''}`}></div>
    <figcaption>
      <details>
        <summary>Arrivals per day, as a table</summary>
        <table class="timeline-table">
          <thead><tr><th scope="col">Day (UTC)</th>${langs.map((l) => html`<th scope="col">${l}</th>`)}</tr></thead>
          <tbody>${dates.map((d, i) => html`<tr><th scope="row">${d}</th>${langs.map((l) => html`<td>${counts[i][l]}</td>`)}</tr>`)}</tbody>
        </table>
      </details>
    </figcaption>
  </figure>`;
}

/** An in-page confirmation: what will change, then the action or nothing. */
function Confirm({ pending, onDone }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const first = useRef(null);
  // One instance serves every confirmation of its page: each new one starts afresh.
  useEffect(() => {
    setBusy(false);
    setError(null);
    if (first.current) first.current.focus();
  }, [pending]);
  if (!pending) return null;
  const go = async () => {
    setBusy(true);
    setError(null);
    try {
      onDone(await pending.run());
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return html`<div class="confirm" role="alertdialog" aria-labelledby="confirm-title" aria-describedby="confirm-detail">
    <h2 id="confirm-title">${pending.title}</h2>
    <div id="confirm-detail">${pending.detail}</div>
    <${ErrorNote} error=${error} />
    <div class="actions">
      <button ref=${first} class="danger" onClick=${go} disabled=${busy}>${pending.action}</button>
      <button onClick=${() => onDone(null)} disabled=${busy}>Cancel</button>
    </div>
  </div>`;
}

function Outcome({ outcome }) {
  if (!outcome) return null;
  return html`<div class="notice" role="status">
    <strong>${outcome.kind} #${outcome.id} done by ${outcome.actor}.</strong>
    ${' '}Look next at <${ClusterLink} id=${outcome.cluster} />; changed:
    ${' '}${outcome.changed.map((c, i) => html`${i ? ', ' : ''}<${ClusterLink} id=${c} />`)}.
  </div>`;
}

function parseIds(text) {
  return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
}

// What the join model read, as `why` records it (names as in config/default.toml).
const WHY_FEATURES = [
  ['best_cosine', 'best cosine to a member', (v) => v.toFixed(2)],
  ['centroid_cosine', 'cosine to the centroid', (v) => v.toFixed(2)],
  ['shared_idf', 'shared names (idf)', (v) => v.toFixed(1)],
  ['gram_cosine', 'shared spelling (title 4-grams)', (v) => v.toFixed(2)],
  ['days_to_best', 'days to that member', (v) => v.toFixed(1)],
  ['crowding', 'crowded neighbourhood (5 best cosines)', (v) => v.toFixed(2)],
  ['ln_size', 'cluster size', (v) => String(Math.round(Math.exp(v)))],
];

/** Why the clusterer placed an article: its decision record (`GET /v1/articles/{id}`). */
function Why({ id, cluster, titleOf }) {
  const { data, error } = useGet(`/v1/articles/${encodeURIComponent(id)}`);
  if (error) return html`<${ErrorNote} error=${error} />`;
  if (!data) return html`<p class="loading">Loading…</p>`;
  const w = data.why;
  if (!w) return html`<p>Not clustered yet.</p>`;
  const candidates = w.candidates || [];
  const joined = candidates.find((k) => k.joined);
  const next = candidates.find((k) => !k.joined);
  const shown = joined || next;
  const f = (shown && shown.features) || {};
  return html`<div class="why">
    <p>Rule: <b>${w.rule}</b>, bar ${w.bar}. ${joined
      ? html`Joined ${joined.cluster} at ${joined.score.toFixed(2)}, through “${titleOf(joined.best_member)}”.${joined.cluster !== cluster
        ? html` <span class="meta">(Now in ${cluster}: merged or moved since.)</span>`
        : ''}`
      : 'Started its own cluster: no candidate reached the bar.'}
      ${next ? html` Best cluster not joined: ${next.cluster} at ${next.score.toFixed(2)}.` : ''}
      ${' '}<span class="meta">${w.candidates_seen} candidate cluster${w.candidates_seen === 1 ? '' : 's'} weighed.</span></p>
    ${shown && html`<dl class="facts">
      ${WHY_FEATURES.filter(([k]) => typeof f[k] === 'number').map(([k, label, fmt]) => html`<div><dt>${label}</dt><dd>${fmt(f[k])}</dd></div>`)}
      <div><dt>language</dt><dd>${f.same_language ? `both ${f.same_language}` : f.other_language ? 'across languages' : '–'}</dd></div>
    </dl>`}
  </div>`;
}

function ClusterPage({ id, admin }) {
  const [version, setVersion] = useState(0);
  const cluster = useGet(`/v1/clusters/${encodeURIComponent(id)}`, version);
  const related = useGet(`/v1/clusters/${encodeURIComponent(id)}/related?k=8`, version);
  const corrections = useGet(`/v1/corrections?cluster=${encodeURIComponent(id)}&limit=20`, version);
  const [selected, setSelected] = useState([]);
  const [pending, setPending] = useState(null);
  const [outcome, setOutcome] = useState(null);
  const [moving, setMoving] = useState(null);
  const [why, setWhy] = useState(null);
  const [mergeError, setMergeError] = useState(null);
  useEffect(() => {
    setSelected([]);
    setMoving(null);
    setWhy(null);
  }, [id, version]);

  if (cluster.error) return html`<h1 tabindex="-1">Cluster ${id}</h1><${ErrorNote} error=${cluster.error} />`;
  if (!cluster.data) return html`<p class="loading">Loading ${id}…</p>`;
  const c = cluster.data;
  const byLang = new Map();
  for (const m of c.members) {
    const l = m.lang || '?';
    if (!byLang.has(l)) byLang.set(l, []);
    byLang.get(l).push(m);
  }
  const groups = [...byLang.entries()].sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0]));
  const titleOf = (aid) => (c.members.find((m) => m.id === aid) || {}).title || aid;

  const done = (result) => {
    setPending(null);
    if (result) {
      setOutcome(result);
      setVersion((v) => v + 1);
    }
  };
  const toggle = (aid) => setSelected((s) => (s.includes(aid) ? s.filter((x) => x !== aid) : [...s, aid]));
  const askSplit = () => setPending({
    title: `Split ${selected.length} article${selected.length === 1 ? '' : 's'} out of ${c.id}?`,
    detail: html`<p>They will form a new cluster:</p><ul>${selected.map((a) => html`<li>${titleOf(a)}</li>`)}</ul>`,
    action: 'Split out',
    run: () => api(`/v1/clusters/${c.id}/split`, { method: 'POST', body: { articles: selected } }),
  });
  const askMerge = async (event) => {
    event.preventDefault();
    setMergeError(null);
    const ids = parseIds(new FormData(event.target).get('clusters') || '');
    if (ids.length === 0) return;
    try {
      const others = await Promise.all(ids.map((x) => api(`/v1/clusters/${encodeURIComponent(x)}`)));
      setPending({
        title: `Merge ${ids.length} cluster${ids.length === 1 ? '' : 's'} into ${c.id}?`,
        detail: html`<p>Their members join “${c.label || c.id}” (${c.size}); their ids will resolve to ${c.id}:</p>
          <ul>${others.map((o) => html`<li>${o.id}: ${o.label || ''} (${o.size}, ${o.languages.join(' ')})</li>`)}</ul>`,
        action: 'Merge',
        run: () => api(`/v1/clusters/${c.id}/merge`, { method: 'POST', body: { clusters: others.map((o) => o.id) } }),
      });
    } catch (e) {
      setMergeError(e);
    }
  };
  const askMove = async (event, member) => {
    event.preventDefault();
    const target = (new FormData(event.target).get('target') || '').trim();
    if (!target) return;
    try {
      const to = await api(`/v1/clusters/${encodeURIComponent(target)}`);
      setPending({
        title: `Move this article to ${to.id}?`,
        detail: html`<p>“${member.title}” leaves ${c.id} and joins “${to.label || to.id}” (${to.size}).</p>`,
        action: 'Move',
        run: () => api(`/v1/articles/${member.id}/move`, { method: 'POST', body: { cluster: to.id } }),
      });
    } catch (e) {
      setMergeError(e);
    }
  };

  return html`<article class="cluster" data-cluster=${c.id}>
    <h1 tabindex="-1">${c.label || c.id}</h1>
    ${c.requested && html`<p class="notice">${c.requested} was merged: this is the cluster it resolves to.</p>`}
    <dl class="facts">
      <div><dt>Cluster</dt><dd>${c.id}</dd></div>
      <div><dt>Articles</dt><dd>${c.size}</dd></div>
      <div><dt>Languages</dt><dd><${Langs} langs=${c.languages} /></dd></div>
      <div><dt>First seen</dt><dd>${when(c.first_seen)}</dd></div>
      <div><dt>Last seen</dt><dd>${when(c.last_seen)}</dd></div>
    </dl>
    <${Outcome} outcome=${outcome} />
    <${Confirm} pending=${pending} onDone=${done} />
    <h2>Timeline</h2>
    <${Timeline} members=${c.members} />
    <h2>Reports by language</h2>
    ${admin && html`<div class="toolbar">
      <button onClick=${askSplit} disabled=${selected.length === 0 || selected.length === c.members.length}>Split ${selected.length || ''} selected out…</button>
      <form class="inline" onSubmit=${askMerge}>
        <label>Merge clusters into this one <input name="clusters" placeholder="c12, c40" pattern="[cC]?[0-9]+([ ,]+[cC]?[0-9]+)*" /></label>
        <button type="submit">Merge…</button>
      </form>
    </div>
    <${ErrorNote} error=${mergeError} />`}
    ${groups.map(([lang, members]) => html`<section class="language" data-lang=${lang} aria-labelledby=${`lang-${lang}`}>
      <h3 id=${`lang-${lang}`}><span class="lang">${lang}</span> ${languageName(lang)} · ${members.length}</h3>
      <table class="list members">
        <thead><tr>${admin && html`<th scope="col"><span class="sr">Select</span></th>`}<th scope="col">Title</th><th scope="col">Outlet</th><th scope="col">Published</th><th scope="col">Similarity</th><th scope="col"><span class="sr">Why</span></th>${admin && html`<th scope="col"><span class="sr">Actions</span></th>`}</tr></thead>
        <tbody>${members.map((m) => html`<tr data-article=${m.id}>
          ${admin && html`<td data-label="Select"><input type="checkbox" aria-label=${`Select “${m.title}”`} checked=${selected.includes(m.id)} onChange=${() => toggle(m.id)} /></td>`}
          <td data-label="Title" lang=${m.lang || undefined}>${m.url ? html`<a href=${m.url} target="_blank" rel="noopener noreferrer">${m.title}</a>` : m.title}</td>
          <td data-label="Outlet">${m.source || '–'}</td>
          <td data-label="Published">${when(m.published_at)}</td>
          <td data-label="Similarity">${m.similarity.toFixed(2)}</td>
          <td data-label="Why"><button class="why-toggle" aria-expanded=${why === m.id} onClick=${() => setWhy(why === m.id ? null : m.id)}>Why?</button></td>
          ${admin && html`<td data-label="Actions">${moving === m.id
            ? html`<form class="inline" onSubmit=${(e) => askMove(e, m)}>
                <label>To cluster <input name="target" size="6" required autofocus /></label>
                <button type="submit">Move…</button>
                <button type="button" onClick=${() => setMoving(null)}>Cancel</button>
              </form>`
            : html`<button onClick=${() => setMoving(m.id)}>Move…</button>`}</td>`}
        </tr>${why === m.id && html`<tr class="why-row"><td colspan=${admin ? 7 : 5}><${Why} id=${m.id} cluster=${c.id} titleOf=${titleOf} /></td></tr>`}`)}</tbody>
      </table>
    </section>`)}
    <h2>Related clusters</h2>
    <${ErrorNote} error=${related.error} />
    ${related.data && (related.data.related.length === 0
      ? html`<p>None near.</p>`
      : html`<ul class="related">${related.data.related.map((r) => html`<li>
          <${ClusterLink} id=${r.id}>${r.label || r.id}<//> <span class="meta">${r.size} · <${Langs} langs=${r.languages} /> · ${when(r.first_seen)} · similarity ${r.similarity.toFixed(2)}</span>
        </li>`)}</ul>`)}
    <h2>Corrections</h2>
    <${ErrorNote} error=${corrections.error} />
    ${corrections.data && (corrections.data.corrections.length === 0
      ? html`<p>No analyst has corrected this cluster.</p>`
      : html`<ul class="corrections">${corrections.data.corrections.map((k) => html`<li>
          #${k.id} ${when(k.at)}, ${k.actor}: ${describe(k.kind, k.data)}
        </li>`)}</ul>`)}
  </article>`;
}

// ---------------------------------------------------------------- search

function SearchPage({ params }) {
  const q = params.get('q') || '';
  const lang = params.get('lang') || '';
  const path = q ? `/v1/search?${new URLSearchParams({ q, k: '20', ...(lang ? { lang } : {}) })}` : null;
  const { data, error, loading } = useGet(path);
  const submit = (event) => {
    event.preventDefault();
    location.hash = link('/search', Object.fromEntries(new FormData(event.target)));
  };
  return html`<h1 tabindex="-1">Search</h1>
    <form class="filters" role="search" onSubmit=${submit}>
      <label>Text in any language <input name="q" type="search" value=${q} required size="40" /></label>
      <label>Only language <input name="lang" value=${lang} size="4" placeholder="any" pattern="[A-Za-z]{2,3}" /></label>
      <button type="submit">Search</button>
    </form>
    <${ErrorNote} error=${error} />
    ${loading && path && html`<p class="loading">Searching…</p>`}
    ${data && html`<ol class="hits">${data.hits.length === 0 && html`<li>Nothing near.</li>`}${data.hits.map((h) => html`<li data-article=${h.article}>
        <span lang=${h.lang || undefined} class="title">${h.title}</span>
        <span class="meta"><span class="lang">${h.lang || '?'}</span> ${when(h.published_at)} · similarity ${h.similarity.toFixed(2)}
        ${h.cluster && html` · <${ClusterLink} id=${h.cluster}>cluster ${h.cluster}<//>`}</span>
      </li>`)}</ol>`}`;
}

// ---------------------------------------------------------------- webhooks (admin)

function WebhooksPage() {
  const { data, error, loading } = useGet('/v1/webhooks/subscriptions');
  return html`<h1 tabindex="-1">Webhook subscriptions</h1>
    <p>Created and changed through the API (<a href="/docs/">POST /v1/webhooks/subscriptions</a>); their deliveries and replays are here.</p>
    <${ErrorNote} error=${error} />
    ${loading && html`<p class="loading">Loading…</p>`}
    ${data && html`<table class="list">
      <thead><tr><th scope="col">Subscription</th><th scope="col">URL</th><th scope="col">Events</th><th scope="col">State</th></tr></thead>
      <tbody>
        ${data.subscriptions.length === 0 && html`<tr><td colspan="4">No subscription.</td></tr>`}
        ${data.subscriptions.map((s) => html`<tr>
          <td data-label="Subscription"><a href=${link(`/webhooks/${s.id}`)}>${s.id}</a>${s.description ? ` ${s.description}` : ''}</td>
          <td data-label="URL" class="url">${s.url}</td>
          <td data-label="Events">${s.event_types.length ? s.event_types.join(', ') : 'all'}</td>
          <td data-label="State">${s.enabled ? 'enabled' : `disabled${s.disabled_reason ? `: ${s.disabled_reason}` : ''}`}</td>
        </tr>`)}
      </tbody>
    </table>`}`;
}

function DeliveriesPage({ id, params }) {
  const [version, setVersion] = useState(0);
  const status = params.get('status') || '';
  const cursor = params.get('cursor') || '';
  const query = new URLSearchParams({ limit: '50', ...(status ? { status } : {}), ...(cursor ? { cursor } : {}) });
  const sub = useGet(`/v1/webhooks/subscriptions/${encodeURIComponent(id)}`);
  const { data, error } = useGet(`/v1/webhooks/subscriptions/${encodeURIComponent(id)}/deliveries?${query}`, version);
  const [pending, setPending] = useState(null);
  const [notice, setNotice] = useState(null);
  const done = (result) => {
    setPending(null);
    if (result) {
      setNotice(result.queued !== undefined ? `${result.queued} event(s) queued again.` : `Delivery ${result.id} queued again.`);
      setVersion((v) => v + 1);
    }
  };
  const askReplay = (d) => setPending({
    title: `Send ${d.event_type} ${d.webhook_id} again?`,
    detail: html`<p>A new delivery of the same event (same webhook id) to ${sub.data ? sub.data.url : id}.</p>`,
    action: 'Replay',
    run: () => api(`/v1/webhooks/deliveries/${d.id}/replay`, { method: 'POST' }),
  });
  const askRange = (event) => {
    event.preventDefault();
    const f = Object.fromEntries(new FormData(event.target));
    const from = new Date(`${f.from}Z`).toISOString();
    const to = new Date(`${f.to}Z`).toISOString();
    setPending({
      title: `Replay every event from ${when(from)} to ${when(to)}?`,
      detail: html`<p>Each event of that range this subscription takes is delivered again.</p>`,
      action: 'Replay range',
      run: () => api(`/v1/webhooks/subscriptions/${encodeURIComponent(id)}/replay`, { method: 'POST', body: { from, to } }),
    });
  };
  return html`<h1 tabindex="-1">Deliveries of ${id}</h1>
    ${sub.data && html`<p class="url">${sub.data.url}</p>`}
    <${ErrorNote} error=${sub.error || error} />
    ${notice && html`<p class="notice" role="status">${notice}</p>`}
    <${Confirm} pending=${pending} onDone=${done} />
    <form class="filters" onSubmit=${askRange} aria-label="Replay a time range">
      <label>From (UTC) <input name="from" type="datetime-local" required /></label>
      <label>To (UTC) <input name="to" type="datetime-local" required /></label>
      <button type="submit">Replay range…</button>
    </form>
    <nav class="tabs" aria-label="Delivery status">
      ${['', 'pending', 'delivered', 'failed'].map((s) => html`<a href=${link(`/webhooks/${id}`, { status: s })} aria-current=${s === status ? 'page' : undefined}>${s || 'all'}</a>`)}
    </nav>
    ${data && html`<table class="list">
      <thead><tr><th scope="col">Delivery</th><th scope="col">Event</th><th scope="col">Status</th><th scope="col">Attempts</th><th scope="col">Last answer</th><th scope="col">Created</th><th scope="col"><span class="sr">Actions</span></th></tr></thead>
      <tbody>
        ${data.deliveries.length === 0 && html`<tr><td colspan="7">No delivery.</td></tr>`}
        ${data.deliveries.map((d) => html`<tr>
          <td data-label="Delivery">${d.id}</td>
          <td data-label="Event">${d.event_type} <span class="meta">${d.webhook_id}</span></td>
          <td data-label="Status">${d.status}</td>
          <td data-label="Attempts">${d.attempts}</td>
          <td data-label="Last answer">${d.last_status || ''} ${d.last_error || ''}</td>
          <td data-label="Created">${when(d.created_at)}</td>
          <td data-label="Actions"><button onClick=${() => askReplay(d)}>Replay…</button></td>
        </tr>`)}
      </tbody>
    </table>
    ${data.next_cursor && html`<nav class="pager"><a rel="next" href=${link(`/webhooks/${id}`, { status, cursor: data.next_cursor })}>Next page</a></nav>`}`}`;
}

// ---------------------------------------------------------------- feeds

function FeedsPage() {
  const { data, error } = useGet('/v1/feeds');
  return html`<h1 tabindex="-1">Feeds</h1>
    <${ErrorNote} error=${error} />
    ${data && (data.feeds.length === 0
      ? html`<p>No feed is configured (<code>[feeds] list</code> in the service's configuration).</p>`
      : html`<table class="list">
      <thead><tr><th scope="col">Feed</th><th scope="col">Last poll</th><th scope="col">Last success</th><th scope="col">Items queued / unchanged / refused</th><th scope="col">Error</th></tr></thead>
      <tbody>${data.feeds.map((f) => html`<tr class=${f.error ? 'failing' : ''}>
        <td data-label="Feed">${f.name} <span class="url">${f.url}</span></td>
        <td data-label="Last poll">${when(f.polled_at)}</td>
        <td data-label="Last success">${when(f.ok_at)}</td>
        <td data-label="Items">${f.items_queued} / ${f.items_unchanged} / ${f.items_refused}</td>
        <td data-label="Error">${f.error || ''}</td>
      </tr>`)}</tbody>
    </table>`)}`;
}

// ---------------------------------------------------------------- the shell

function Page({ route, admin }) {
  const cluster = route.path.match(/^\/clusters\/([^/]+)$/);
  if (cluster) return html`<${ClusterPage} id=${decodeURIComponent(cluster[1])} admin=${admin} />`;
  if (route.path === '/search') return html`<${SearchPage} params=${route.params} />`;
  if (route.path === '/feeds') return html`<${FeedsPage} />`;
  const deliveries = route.path.match(/^\/webhooks\/([^/]+)$/);
  if (admin && deliveries) return html`<${DeliveriesPage} id=${decodeURIComponent(deliveries[1])} params=${route.params} />`;
  if (admin && route.path === '/webhooks') return html`<${WebhooksPage} />`;
  return html`<${ClusterList} params=${route.params} />`;
}

function App() {
  const route = useRoute();
  const [me, setMe] = useState(null);
  const [reason, setReason] = useState(null);
  const main = useRef(null);
  useEffect(() => {
    const refused = (event) => {
      session.key = null;
      setMe(null);
      setReason(event.detail || 'The key was refused.');
    };
    window.addEventListener('concord:refused', refused);
    if (session.key) api('/v1/me').then(setMe, () => {});
    return () => window.removeEventListener('concord:refused', refused);
  }, []);
  useEffect(() => {
    const heading = main.current && main.current.querySelector('h1');
    if (heading && document.activeElement === document.body) heading.focus({ preventScroll: true });
  }, [route.path]);
  if (!session.key || !me) {
    if (session.key && !reason) return html`<p class="loading">Checking the key…</p>`;
    return html`<${SignIn} reason=${reason} onSignedIn=${(m) => { setReason(null); setMe(m); }} />`;
  }
  const admin = me.role === 'admin';
  const here = (p) => (route.path === p || route.path.startsWith(`${p}/`) ? 'page' : undefined);
  const signOut = () => {
    session.key = null;
    setMe(null);
    setReason(null);
  };
  return html`<header class="top">
      <button class="skip" onClick=${() => main.current && main.current.focus()}>Skip to content</button>
      <a class="brand" href="#/clusters">Concord</a>
      <nav aria-label="Sections">
        <a href="#/clusters" aria-current=${here('/clusters')}>Clusters</a>
        <a href="#/search" aria-current=${here('/search')}>Search</a>
        <a href="#/feeds" aria-current=${here('/feeds')}>Feeds</a>
        ${admin && html`<a href="#/webhooks" aria-current=${here('/webhooks')}>Webhooks</a>`}
        <a href="/docs/">API</a>
      </nav>
      <span class="who" data-role=${me.role}>${me.name} (${me.role})</span>
      <button class="signout" onClick=${signOut}>Sign out</button>
    </header>
    <main id="main" ref=${main} tabindex="-1"><${Page} route=${route} admin=${admin} /></main>`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
