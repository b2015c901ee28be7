// The server's REST API with the master key: how the dashboard test checks each step's effect.

export class Rest {
  constructor(serverURL, appId, masterKey, javascriptKey) {
    this.serverURL = serverURL;
    this.clientHeaders = { 'X-Parse-Application-Id': appId, 'Content-Type': 'application/json' };
    if (javascriptKey) this.clientHeaders['X-Parse-Javascript-Key'] = javascriptKey;
    this.headers = { 'X-Parse-Application-Id': appId, 'X-Parse-Master-Key': masterKey, 'Content-Type': 'application/json' };
  }

  async call(method, route, body) {
    const res = await fetch(this.serverURL + route, { method, headers: this.headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const json = await res.json();
    if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  }

  /** A call as a client without the master key: its status and body, whatever they are. */
  async asClient(method, route, body) {
    const res = await fetch(this.serverURL + route, { method, headers: this.clientHeaders, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: await res.json() };
  }

  get(route) { return this.call('GET', route); }
  post(route, body) { return this.call('POST', route, body); }
  put(route, body) { return this.call('PUT', route, body); }

  async find(className, where = {}, extra = '') {
    const query = `where=${encodeURIComponent(JSON.stringify(where))}${extra}`;
    return (await this.get(`/classes/${className}?${query}`)).results;
  }

  async count(className, where = {}) {
    return (await this.get(`/classes/${className}?count=1&limit=0&where=${encodeURIComponent(JSON.stringify(where))}`)).count;
  }
}
