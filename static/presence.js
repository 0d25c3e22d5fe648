/*!
 * presence.js: jQuery client for the presence service (JSONP long-polling, or JSON with CORS).
 *
 * Include jQuery (3.7 or 4.x), then this file, from the presence service itself, on any page:
 *
 *   <script src="https://presence.example.com/static/vendor/jquery-3.7.1.min.js"></script>
 *   <script src="https://presence.example.com/static/presence.js"></script>
 *   <script>
 *     var client = $.presence({user: "alice", info: {name: "Alice"}});
 *     client.on("members", function (members, channel) { ...render members... })
 *           .on("join leave offline", function (event, channel) { ...show the event... })
 *           .on("message", function (event, channel) { ...event.data is the text... })
 *           .on("state", function (state, channel, detail) { ...connecting/online/retrying... });
 *     client.join("lobby");
 *     client.send("lobby", "hello");
 *   </script>
 *
 * $.presence(options) -> client; it throws on a user id, info or (in join) a channel name
 * the service would refuse, since a refused JSONP request is invisible to the page. Options:
 *   user          (required) user id, [A-Za-z0-9_.@-]{1,128}
 *   info          optional object sent as JSON with each join (<= 1 KB); others see it in events
 *   token         optional signed token (required by a service started with --secret): one
 *                 string for every channel, an object {channel: token} (a channel not in it
 *                 uses the "*" entry, if any), or a function(channel) returning the token.
 *                 Channel-scoped tokens (`presence token --channels`) are needed for
 *                 `private-*` channels.
 *   url           service base URL; defaults to the origin this file was loaded from
 *   transport     "jsonp" (default: works from any origin, any browser) or "json" (JSON + CORS)
 *   channels      channel names to join (on the next tick, after your handlers are attached)
 *   joinTimeout   ms to wait for a join/leave/send answer (default 10000)
 *   requestTimeout ms to wait for a long-poll answer; default: the server's poll timeout
 *                 (or presence timeout) from the join answer plus 5 s. A JSONP request that
 *                 never answers reports no error, so this timeout is what detects a dead poll.
 *   backoff       {base: 500, max: 15000}: retry delay in ms doubles per failure up to max,
 *                 and is jittered to between half and all of that value
 *   leaveOnPageHide  true (default): on pagehide, tell the service this tab left (sendBeacon)
 *   storageKey    sessionStorage key of this tab's connection id (default "presence.conn")
 *
 * Client methods (all chainable ones return the client):
 *   join(channel)          start (or restart) presence in channel; returns the client
 *   leave(channel)         leave channel now; returns a promise
 *   close()                leave every channel; returns a promise
 *   send(channel, text)    publish a chat message (string <= 4 KB); returns a promise of {ok, id}
 *   members(channel)       current members, one per user however many tabs, sorted by user:
 *                          [{user, info, since, connections}] (since/connections when known)
 *   state(channel)         "idle" | "connecting" | "online" | "retrying" | "kicked" | "closed"
 *   channels()             names of the channels this client is in
 *   on(types, fn) / off(types, fn)   space-separated event types, as in jQuery
 *
 * Events (handlers run with `this` = the client):
 *   join, leave, offline, message, event (any of the four): fn(event, channel), where event
 *     is the service's {id, type, user, info, ts, reason?, data?}
 *   members: fn(members, channel) whenever the members list changes
 *   state:   fn(state, channel, detail) whenever a channel's connection state changes;
 *            detail has {attempt, delay, error} while retrying and {reason} when closed/kicked
 *   reset:   fn(channel) when the service's history no longer reached our cursor and the
 *            members list was resynchronised from its snapshot (events in the gap are lost)
 *
 * Behaviour worth knowing:
 * - Each tab keeps its own connection id in sessionStorage: a reload keeps it, and two tabs
 *   of one user are two connections of one member. A duplicated tab, which starts with a
 *   copy of sessionStorage, notices through a BroadcastChannel and takes a new id.
 * - After a failed request the client waits (backoff with jitter), then polls again from its
 *   cursor (joins again if the join failed, or if the poll answers that it must), so no
 *   event is missed unless the service answers `reset`.
 * - The service never re-registers a tab from a poll. A poll from a tab it does not count
 *   as joined answers {rejoin: true, reason, cursor}: with reason "expired" (the tab was
 *   silent longer than the timeout, e.g. a frozen page), "left" or "unknown" (e.g. after a
 *   store restart) the client joins again, with its info, and resumes from its cursor;
 *   with "kicked" it stops polling that channel (state "kicked") until join() is called.
 *   Its own `offline` or `leave` event seen while the tab is alive does the same.
 * - The members list starts from the join answer, which holds at most the first 1000
 *   members of a channel (the service says `more`); events keep it current from there.
 * - Cursors are opaque strings ("<epoch>:<id>"); the client only hands back what the
 *   service gave it. A store that restarted empty has new epochs, so the next poll
 *   answers `reset` (after a rejoin) rather than skipping events.
 * - Event times (`ts`) and `since` are milliseconds since the epoch.
 * - Every open channel holds one long-poll; browsers allow about 6 connections per origin,
 *   shared by all tabs, so keep the channels per tab few.
 */
(function (factory) {
  "use strict";
  if (typeof define === "function" && define.amd) {
    define(["jquery"], factory);
  } else {
    factory(window.jQuery);
  }
}(function ($) {
  "use strict";

  var USER_RE = /^[A-Za-z0-9_.@-]{1,128}$/;
  var CHANNEL_RE = /^[A-Za-z0-9_.-]{1,64}$/;

  // The origin this file was served from: the natural default service URL for a page on
  // another domain that includes <script src="https://presence.example.com/static/presence.js">.
  var scriptOrigin = (function () {
    var script = document.currentScript;
    if (!script || !script.src) {
      return "";
    }
    var match = /^(https?:\/\/[^\/]+)\//.exec(script.src);
    return match ? match[1] : "";
  }());

  var defaults = {
    url: scriptOrigin,
    transport: "jsonp",
    channels: [],
    joinTimeout: 10000,
    requestTimeout: null,
    backoff: {base: 500, max: 15000},
    leaveOnPageHide: true,
    storageKey: "presence.conn"
  };

  function utf8Length(text) {
    return window.TextEncoder ? new window.TextEncoder().encode(text).length : text.length;
  }

  /** A random id for a connection: 16 characters of [A-Za-z0-9_-]. */
  function randomId() {
    var alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    var bytes = new Uint8Array(16);
    var id = "";
    var i;
    if (window.crypto && window.crypto.getRandomValues) {
      window.crypto.getRandomValues(bytes);
    } else {
      for (i = 0; i < bytes.length; i++) {
        bytes[i] = Math.floor(Math.random() * 256);
      }
    }
    for (i = 0; i < bytes.length; i++) {
      id += alphabet.charAt(bytes[i] % 64);
    }
    return id;
  }

  /** Remember `id` as this tab's connection id (nothing happens when storage is disabled). */
  function storeConnectionId(key, id) {
    try {
      window.sessionStorage.setItem(key, id);
    } catch (e) { /* storage disabled: the id lives as long as the page */ }
  }

  /** This tab's connection id: kept in sessionStorage (per tab, survives reloads), else in memory. */
  function tabConnectionId(key) {
    var id = null;
    try {
      id = window.sessionStorage.getItem(key);
      if (!id || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
        id = randomId();
        storeConnectionId(key, id);
      }
    } catch (e) {
      id = id || randomId();  // storage disabled (sandboxed frame, privacy mode): one id per page load
    }
    return id;
  }

  /** Turn a members snapshot (array of objects or of names, or an object keyed by user) into a map. */
  function membersMap(snapshot) {
    var map = {};
    if (Array.isArray(snapshot)) {
      $.each(snapshot, function (_, m) {
        var member = typeof m === "string" ? {user: m} : $.extend({}, m);
        if (member.user) {
          map[member.user] = member;
        }
      });
    } else if (snapshot && typeof snapshot === "object") {
      $.each(snapshot, function (user, m) {
        map[user] = $.extend({user: user}, typeof m === "object" && m !== null ? m : {});
      });
    }
    return map;
  }

  function errorText(xhr, status, thrown) {
    var body = xhr && xhr.responseJSON;
    if (body && body.error) {
      return String(body.error);
    }
    return status === "timeout" ? "timeout" : String(thrown || status || "error");
  }

  /**
   * One channel's presence: join, then long-poll forever, retrying with backoff.
   * Owned by a Client; reports through client.emit().
   */
  function Channel(client, name) {
    this.client = client;
    this.name = name;
    this.cursor = null;
    this.members = {};
    this.state = "idle";
    this.request = null;   // the jqXHR in flight, if any
    this.timer = null;     // pending retry
    this.failures = 0;
    this.rejoins = 0;      // rejoin answers since the last ordinary poll answer
    this.generation = 0;   // bumped on stop(): answers to older loops are ignored
    this.pollTimeout = null;
  }

  Channel.prototype.setState = function (state, detail) {
    if (state !== this.state || state === "retrying") {
      this.state = state;
      this.client.emit("state", [state, this.name, detail || {}]);
    }
  };

  Channel.prototype.params = function (extra) {
    var client = this.client;
    var params = {user: client.user, conn: client.conn};
    var token = client.tokenFor(this.name);
    if (token) {
      params.token = token;
    }
    return $.extend(params, extra);
  };

  /** Start (or restart after stop) the join-then-poll loop. */
  Channel.prototype.start = function () {
    this.stop();
    this.failures = 0;
    this.cursor = null;
    this.setState("connecting");
    this.join(this.generation);
  };

  /** Stop the loop: abort the request in flight and cancel any pending retry. */
  Channel.prototype.stop = function () {
    this.generation += 1;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.request) {
      var request = this.request;
      this.request = null;
      request.abort();
    }
  };

  /**
   * Register this tab's connection. On the first join the snapshot and its cursor are taken;
   * on a rejoin (after errors, or when the service says we went offline) the snapshot replaces
   * the members and polling resumes from the old cursor, so events in between still arrive.
   */
  Channel.prototype.join = function (generation) {
    var self = this;
    var extra = {};
    if (this.client.options.info !== undefined && this.client.options.info !== null) {
      extra.info = JSON.stringify(this.client.options.info);
    }
    this.request = this.client.ajax(this.name, "join", this.params(extra), this.client.options.joinTimeout);
    this.request.then(function (answer) {
      if (generation !== self.generation) {
        return;
      }
      self.request = null;
      self.pollTimeout = answer.poll_timeout || answer.timeout || null;
      if (self.cursor === null || self.cursor === undefined) {
        self.cursor = answer.cursor;
      }
      self.replaceMembers(answer.members);
      self.failures = 0;
      self.setState("online");
      self.poll(generation);
    }, function (xhr, status, thrown) {
      if (generation === self.generation) {
        self.request = null;
        self.retry(generation, errorText(xhr, status, thrown));
      }
    });
  };

  Channel.prototype.poll = function (generation) {
    var self = this;
    var options = this.client.options;
    var timeout = options.requestTimeout || ((this.pollTimeout || 30) * 1000 + 5000);
    this.request = this.client.ajax(this.name, "poll", this.params({cursor: this.cursor}), timeout);
    this.request.then(function (answer) {
      if (generation !== self.generation) {
        return;
      }
      self.request = null;
      if (self.failures) {
        self.failures = 0;
        self.setState("online");
      }
      if (answer.rejoin) {
        self.rejoin(generation, answer.reason);
        return;
      }
      self.rejoins = 0;
      var next = self.receive(answer);
      if (next === "stop") {
        return;
      }
      if (next === "rejoin") {
        self.join(generation);
      } else if (answer.reconnect) {
        // The node is shutting down: poll again soon (through the balancer, another node),
        // spread over half a second so its clients do not all arrive at once.
        self.timer = setTimeout(function () {
          self.timer = null;
          if (generation === self.generation) {
            self.poll(generation);
          }
        }, Math.round(Math.random() * 500));
      } else {
        self.poll(generation);
      }
    }, function (xhr, status, thrown) {
      if (generation === self.generation) {
        self.request = null;
        self.retry(generation, errorText(xhr, status, thrown), "poll");
      }
    });
  };

  /**
   * The service does not count this tab as joined: stop when kicked, else join again (with
   * our info) and resume from the cursor. A second rejoin in a row waits with backoff.
   */
  Channel.prototype.rejoin = function (generation, reason) {
    if (reason === "kicked") {
      this.stop();
      this.setState("kicked", {reason: "kicked"});
      return;
    }
    this.rejoins += 1;
    if (this.rejoins > 1) {
      this.retry(generation, "rejoin: " + reason);
    } else {
      this.join(generation);
    }
  };

  /**
   * Wait (exponential backoff with jitter), then join again, or with `action` "poll" poll
   * again from the cursor: a poll says whether the service still counts this tab (if it
   * does not, the answer is a rejoin, and a kick that happened meanwhile holds).
   */
  Channel.prototype.retry = function (generation, error, action) {
    var self = this;
    var backoff = this.client.options.backoff;
    this.failures += 1;
    var ceiling = Math.min(backoff.max, backoff.base * Math.pow(2, this.failures - 1));
    var delay = Math.round(ceiling / 2 + Math.random() * ceiling / 2);
    this.setState("retrying", {attempt: this.failures, delay: delay, error: error});
    this.timer = setTimeout(function () {
      self.timer = null;
      if (generation === self.generation) {
        if (action === "poll") {
          self.poll(generation);
        } else {
          self.join(generation);
        }
      }
    }, delay);
  };

  /**
   * Apply one poll answer; returns "poll", "rejoin" (the service counts us gone but we are
   * here) or "stop" (we were kicked).
   */
  Channel.prototype.receive = function (answer) {
    var self = this;
    var client = this.client;
    var changed = false;
    var next = "poll";
    if (answer.reset) {
      this.cursor = answer.cursor;
      this.replaceMembers(answer.members);
      client.emit("reset", [this.name]);
      return "poll";
    }
    $.each(answer.events || [], function (_, event) {
      changed = self.apply(event) || changed;
      client.emit(event.type, [event, self.name]);
      client.emit("event", [event, self.name]);
      // The service counted us gone (timed out while frozen, or a race with another tab's
      // leave): join again, with our info (a poll never registers us).
      if (event.user === client.user && (event.type === "leave" || event.type === "offline") &&
          next !== "stop") {
        next = event.reason === "kicked" ? "stop" : "rejoin";
      }
    });
    if (answer.cursor !== undefined && answer.cursor !== null) {
      this.cursor = answer.cursor;
    }
    if (changed) {
      client.emit("members", [this.members_(), this.name]);
    }
    if (next === "stop") {
      this.stop();
      this.setState("kicked", {reason: "kicked"});
    }
    return next;
  };

  /** Update the members map from one event; true when it changed. */
  Channel.prototype.apply = function (event) {
    if (event.type === "join") {
      var old = this.members[event.user];
      this.members[event.user] = $.extend({}, old, {user: event.user, info: event.info},
                                          old && old.since ? {} : {since: event.ts});
      return true;
    }
    if ((event.type === "leave" || event.type === "offline") && this.members[event.user]) {
      delete this.members[event.user];
      return true;
    }
    return false;
  };

  Channel.prototype.replaceMembers = function (snapshot) {
    this.members = membersMap(snapshot);
    this.client.emit("members", [this.members_(), this.name]);
  };

  /** The members as a sorted array of copies, safe to hand to page code. */
  Channel.prototype.members_ = function () {
    var list = $.map(this.members, function (m) { return $.extend({}, m); });
    list.sort(function (a, b) { return a.user < b.user ? -1 : (a.user > b.user ? 1 : 0); });
    return list;
  };

  /** A presence client: one user, one connection id per tab, any number of channels. */
  function Client(options) {
    // Mistakes the service would answer with a 400 are thrown here: over JSONP the page
    // could not see the 400, and the client would retry forever.
    if (!options || !USER_RE.test(String(options.user || ""))) {
      throw new Error("$.presence: options.user must match [A-Za-z0-9_.@-]{1,128}");
    }
    if (options.info !== undefined && options.info !== null && utf8Length(JSON.stringify(options.info)) > 1024) {
      throw new Error("$.presence: options.info must be at most 1 KB as JSON");
    }
    this.options = $.extend(true, {}, defaults, options);
    this.options.url = String(this.options.url || "").replace(/\/+$/, "");
    this.user = String(options.user);
    this.conn = tabConnectionId(this.options.storageKey);
    this.rooms = {};
    this.handlers = {};
    this.hidden = false;
    var self = this;
    this.claimConnectionId();
    if (this.options.leaveOnPageHide) {
      this.onPageHide = function (e) { self.pageHidden(e); };
      this.onPageShow = function (e) { self.pageShown(e); };
      window.addEventListener("pagehide", this.onPageHide);
      window.addEventListener("pageshow", this.onPageShow);
    }
    // Joined on the next tick, so that handlers attached right after $.presence() see it all.
    setTimeout(function () {
      $.each(self.options.channels || [], function (_, name) { self.join(name); });
    }, 0);
  }

  /**
   * Make sure no other open tab of this site uses our connection id. "Duplicate tab" copies
   * sessionStorage, so two tabs would share one connection and the service would count one.
   * The new tab asks on a BroadcastChannel; a tab owning the id answers, and the asker takes
   * a fresh id and joins again with it. Without BroadcastChannel nothing is checked.
   */
  Client.prototype.claimConnectionId = function () {
    var self = this;
    var nonce = randomId();
    if (!window.BroadcastChannel) {
      return;
    }
    var bus = this.bus = new window.BroadcastChannel("presence.conn");
    bus.onmessage = function (e) {
      var msg = e.data || {};
      if (msg.ask === self.conn && msg.nonce !== nonce) {
        bus.postMessage({taken: msg.ask, to: msg.nonce});
      } else if (msg.taken === self.conn && msg.to === nonce) {
        self.conn = randomId();
        storeConnectionId(self.options.storageKey, self.conn);
        bus.postMessage({ask: self.conn, nonce: nonce});
        $.each(self.rooms, function (name) { self.join(name); });
      }
    };
    bus.postMessage({ask: this.conn, nonce: nonce});
  };

  Client.prototype.on = function (types, fn) {
    var self = this;
    $.each(String(types).split(/\s+/), function (_, type) {
      if (type) {
        (self.handlers[type] = self.handlers[type] || $.Callbacks()).add(fn);
      }
    });
    return this;
  };

  Client.prototype.off = function (types, fn) {
    var self = this;
    $.each(String(types).split(/\s+/), function (_, type) {
      if (self.handlers[type]) {
        if (fn) {
          self.handlers[type].remove(fn);
        } else {
          self.handlers[type].empty();
        }
      }
    });
    return this;
  };

  /** Call the handlers of `type`; a throwing handler is reported but never stops the loop. */
  Client.prototype.emit = function (type, args) {
    var callbacks = this.handlers[type];
    if (!callbacks) {
      return;
    }
    try {
      callbacks.fireWith(this, args);
    } catch (e) {
      setTimeout(function () { throw e; }, 0);
    }
  };

  Client.prototype.endpoint = function (channel, action) {
    return this.options.url + "/channels/" + encodeURIComponent(channel) + "/" + action;
  };

  /** One request in the configured transport; jQuery 4 needs dataType "jsonp" spelled out. */
  Client.prototype.ajax = function (channel, action, params, timeout) {
    var settings = {
      url: this.endpoint(channel, action),
      data: params,
      timeout: timeout,
      dataType: this.options.transport === "json" ? "json" : "jsonp"
    };
    if (settings.dataType === "jsonp") {
      settings.jsonp = "callback";
    }
    var xhr = $.ajax(settings);
    var answered = xhr.then(function (answer) {
      // A service may answer a JSONP request with {"error": ...} instead of an HTTP status.
      if (answer && answer.error) {
        return $.Deferred().reject(null, "error", answer.error).promise();
      }
      return answer;
    });
    answered.abort = function () { xhr.abort(); };
    return answered;
  };

  Client.prototype.join = function (channel) {
    channel = String(channel);
    if (!CHANNEL_RE.test(channel)) {
      throw new Error("$.presence: a channel name must match [A-Za-z0-9_.-]{1,64}");
    }
    var room = this.rooms[channel] || (this.rooms[channel] = new Channel(this, channel));
    room.start();
    return this;
  };

  Client.prototype.leave = function (channel) {
    var room = this.rooms[channel];
    if (!room) {
      return $.Deferred().resolve({ok: true}).promise();
    }
    room.stop();
    delete this.rooms[channel];
    room.setState("closed", {reason: "left"});
    return this.ajax(channel, "leave", room.params(), this.options.joinTimeout);
  };

  Client.prototype.close = function () {
    var self = this;
    var pending = $.map(this.channels(), function (name) { return self.leave(name); });
    if (this.options.leaveOnPageHide) {
      window.removeEventListener("pagehide", this.onPageHide);
      window.removeEventListener("pageshow", this.onPageShow);
    }
    if (this.bus) {
      this.bus.close();
      this.bus = null;
    }
    return $.when.apply($, pending);
  };

  Client.prototype.send = function (channel, text) {
    var room = this.rooms[channel];
    var params = room ? room.params({data: String(text)}) : {user: this.user, conn: this.conn, data: String(text)};
    if (!room && this.tokenFor(channel)) {
      params.token = this.tokenFor(channel);
    }
    return this.ajax(channel, "send", params, this.options.joinTimeout);
  };

  /** The token option's value for one channel (a string, a {channel: token} map, or a function). */
  Client.prototype.tokenFor = function (channel) {
    var token = this.options.token;
    if (typeof token === "function") {
      return token(channel) || null;
    }
    if (token && typeof token === "object") {
      var own = Object.prototype.hasOwnProperty;
      return (own.call(token, channel) ? token[channel] : own.call(token, "*") ? token["*"] : null) || null;
    }
    return token || null;
  };

  Client.prototype.members = function (channel) {
    return this.rooms[channel] ? this.rooms[channel].members_() : [];
  };

  Client.prototype.state = function (channel) {
    return this.rooms[channel] ? this.rooms[channel].state : "idle";
  };

  Client.prototype.channels = function () {
    return $.map(this.rooms, function (_, name) { return name; });
  };

  /** Best-effort leave while the page goes away: a beacon survives the unload, an XHR may not. */
  Client.prototype.pageHidden = function () {
    var self = this;
    this.hidden = true;
    $.each(this.rooms, function (name, room) {
      room.stop();
      var url = self.endpoint(name, "leave") + "?" + $.param(room.params());
      var sent = false;
      try {
        sent = navigator.sendBeacon && navigator.sendBeacon(url);
      } catch (e) {
        sent = false;
      }
      if (!sent && window.fetch) {
        window.fetch(url, {mode: "no-cors", keepalive: true, cache: "no-store"});
      } else if (!sent) {
        new Image().src = url;
      }
    });
  };

  /** Back from the back/forward cache: the service saw us leave, so join again. */
  Client.prototype.pageShown = function (e) {
    var self = this;
    if (this.hidden && e.persisted) {
      this.hidden = false;
      $.each(this.rooms, function (name) { self.join(name); });
    }
  };

  $.presence = function (options) {
    return new Client(options);
  };
  $.presence.Client = Client;
  $.presence.defaults = defaults;
  $.presence.version = "0.1.0";
  return $.presence;
}));
