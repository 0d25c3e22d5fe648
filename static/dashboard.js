/*
 * The ops dashboard at "/dashboard", for deployments with thousands of users and channels.
 *
 * - Totals from /api/stats (distinct users), charts from /api/history (so they survive a
 *   reload), nodes from /api/nodes, health from /readyz; channels and members searched by
 *   prefix and paged with the service's `next` cursors; a live feed from /api/events.
 * - Tables are updated in place, keyed by channel / user: a row is created once, its cells'
 *   text is written only when it changed, and rows are moved only when the order changed.
 *   So a focused button keeps focus and selected text stays selected while data streams in.
 * - When /readyz or an API read fails, the numbers and charts are greyed and marked
 *   "stale since hh:mm:ss" until a read succeeds again: stale data never looks live.
 * - An endpoint this node does not have (404, an older node) is shown as "not available".
 * - Every request goes through api(), the one place that adds the admin token.
 * - Every string from users or the service is inserted with .text(), never as HTML.
 *
 * URL parameters: ?limit=N rows per page (default 50, at most 1000).
 */
(function ($) {
  "use strict";

  var query = new URLSearchParams(window.location.search);
  var PAGE = Math.max(1, Math.min(1000, Number(query.get("limit")) || 50));
  var FEED_LIMIT = 200;
  var HISTORY_MINUTES = 60;

  var failing = {};          // source ("readyz", "api") -> true while its last read failed
  var staleSince = null;     // Date of the first failure of the current outage
  var channelsView = {prefix: "", cursor: null, stack: [], next: null};
  var membersView = {channel: null, prefix: "", cursor: null, stack: [], next: null};
  var recent = [];           // timestamps (ms) of events seen, for the one-minute rate
  var charts = {};
  var refreshTimer = null;
  var haveStats = true;      // false once /api/stats answered 404 (an older node)

  // ----- requests -----

  function token() {
    return String($("#token").val() || "").trim();
  }

  // ----- access control: KEEP in any rewrite. With --admin-token every /api/* read (and
  // /metrics) needs "Authorization: Bearer <token>"; authHeaders() is the one place that
  // adds it, from the #token field (kept in sessionStorage under "presence.adminToken"). A
  // 401 means the token is missing or wrong: the page says so (see reportRead).
  var tokenRefused = false;

  /** Headers every request carries: the admin token, when one was typed in. */
  function authHeaders() {
    return token() ? {Authorization: "Bearer " + token()} : {};
  }

  function needsToken(xhr) {
    return Boolean(xhr && xhr.status === 401);
  }
  // ----- end of access control

  /**
   * The one request function: GET (or options.method) `path` with `options.data`; a promise
   * of the parsed JSON body. Reads report success or failure to the stale/down state, except
   * a 404 (an endpoint this node lacks, or a channel that emptied).
   */
  function api(path, options) {
    options = options || {};
    var source = options.source || "api";
    var settings = {
      url: path,
      method: options.method || "GET",
      data: options.data,
      dataType: options.dataType || "json",
      timeout: options.timeout || 10000,
      headers: authHeaders(),
      cache: false
    };
    return $.ajax(settings).then(function (body) {
      if (settings.method === "GET") {
        tokenRefused = false;
        reportRead(source, true);
      }
      return body;
    }, function (xhr) {
      if (needsToken(xhr)) {  // not a failing service: this page lacks the token
        tokenRefused = true;
        $("#updated").text("enter the admin token to see the data");
      } else if (settings.method === "GET" && xhr.status !== 404 && xhr.statusText !== "abort") {
        reportRead(source, false);
      }
      return $.Deferred().reject(xhr).promise();
    });
  }

  // ----- stale / down state -----

  function clock(date) {
    return date.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false});
  }

  function reportRead(source, ok) {
    if (ok) {
      delete failing[source];
    } else {
      failing[source] = true;
    }
    var stale = Object.keys(failing).length > 0;
    if (stale && !staleSince) {
      staleSince = new Date();
    } else if (!stale) {
      staleSince = null;
    }
    $("body").toggleClass("stale", stale);
    $(".live-data").attr("aria-describedby", stale ? "health" : null);
    if (stale) {
      $("#health").attr("class", "pill pill-bad")
        .text((failing.readyz ? "down" : "API failing") + ": stale since " + clock(staleSince));
      $("#updated").text("");
    } else {
      $("#health").attr("class", "pill pill-ok").text("ready");
      $("#updated").text(tokenRefused ? "enter the admin token to see the data" : "updated " + clock(new Date()));
    }
  }

  // ----- keyed DOM updates -----

  /** Set an element's text only when it differs (a rewrite would clear a selection in it). */
  function setText(el, text) {
    text = String(text);
    if (el.textContent !== text) {
      el.textContent = text;
    }
  }

  function setAttr(el, name, value) {
    if (el.getAttribute(name) !== value) {
      el.setAttribute(name, value);
    }
  }

  /**
   * Make tbody's rows match `items` in order, one row per key: rows of vanished keys go
   * first, then existing rows are updated in place and moved only when out of order, so a
   * row that stays keeps its focus and selection.
   */
  function syncRows(tbody, items, keyOf, create, update) {
    var wanted = {};
    $.each(items, function (_, item) { wanted[keyOf(item)] = true; });
    var rows = {};
    $(tbody).children("tr").each(function () {
      var key = this.getAttribute("data-key");
      if (wanted[key] && !rows[key]) {
        rows[key] = this;
      } else {
        tbody.removeChild(this);
      }
    });
    var prev = null;
    $.each(items, function (_, item) {
      var key = keyOf(item);
      var row = rows[key];
      if (!row) {
        row = create(item);
        row.setAttribute("data-key", key);
      }
      update(row, item);
      var slot = prev ? prev.nextSibling : tbody.firstChild;
      if (row !== slot) {
        tbody.insertBefore(row, slot);
      }
      prev = row;
    });
  }

  function cell(row, className) {
    return $("<td>").addClass(className).appendTo(row)[0];
  }

  function fmtAge(ms) {
    var age = Math.max(0, Math.round((Date.now() - Number(ms)) / 1000));
    return age < 60 ? age + "s" : age < 3600 ? Math.floor(age / 60) + "m " + (age % 60) + "s"
      : Math.floor(age / 3600) + "h " + Math.floor(age % 3600 / 60) + "m";
  }

  function toMs(ts) {
    var n = Number(ts);
    return n && n < 1e12 ? n * 1000 : n;  // the service sends milliseconds; tolerate seconds
  }

  // ----- totals -----

  function refreshStats() {
    if (!haveStats) {
      return $.Deferred().resolve().promise();
    }
    return api("/api/stats").then(function (body) {
      setText($("#stat-users")[0], body.users);
      setText($("#stat-channels")[0], body.channels);
      setText($("#stat-connections")[0], body.connections);
    }, function (xhr) {
      if (xhr.status === 404) {
        haveStats = false;  // an older node: totals over the channels page instead
        setText($("#stat-users-label")[0], "users online (sum over the channels shown)");
      }
    });
  }

  // ----- channels -----

  function channelQuery(view, extra) {
    var data = $.extend({limit: PAGE}, extra);
    if (view.prefix) {
      data.prefix = view.prefix;
    }
    if (view.cursor) {
      data.cursor = view.cursor;
    }
    return data;
  }

  function createChannelRow(c) {
    var row = document.createElement("tr");
    row.className = "channel-row";
    var name = cell(row, "name");
    $("<button>").attr("type", "button").addClass("channel-link").appendTo(name);
    cell(row, "num users");
    cell(row, "num connections");
    return row;
  }

  function updateChannelRow(row, c) {
    var name = String(c.channel);
    var button = row.querySelector(".channel-link");
    setAttr(row, "data-channel", name);
    setText(button, name);
    setAttr(button, "aria-label", "show members of " + name);
    setAttr(button, "aria-pressed", name === membersView.channel ? "true" : "false");
    $(row).toggleClass("selected", name === membersView.channel).toggleClass("idle", !Number(c.users));
    setText(row.querySelector(".users"), c.users === undefined ? "–" : c.users);
    setText(row.querySelector(".connections"), c.connections === undefined ? "–" : c.connections);
  }

  function refreshChannels() {
    var view = channelsView;
    var asked = view.prefix + "|" + view.cursor;
    return api("/api/channels", {data: channelQuery(view)}).then(function (body) {
      if (view !== channelsView || asked !== view.prefix + "|" + view.cursor) {
        return;  // the search or page changed meanwhile: a stale answer
      }
      $("#channels").attr("data-prefix", view.prefix);  // what the rows shown match
      // A node without prefix search ignores `prefix`: filter here too.
      var channels = $.grep(body.channels || [], function (c) {
        return String(c.channel).indexOf(view.prefix) === 0;
      });
      view.next = body.next || null;
      syncRows($("#channels")[0], channels, function (c) { return String(c.channel); },
        createChannelRow, updateChannelRow);
      setText($("#channel-count")[0], channels.length + (view.next ? "+" : ""));
      $("#channels-empty").prop("hidden", channels.length > 0)
        .text(view.prefix ? "No channel starts with \u201c" + view.prefix + "\u201d." : "No channel has anyone in it.");
      $("#channels-next").prop("disabled", !view.next);
      $("#channels-first").prop("disabled", !view.cursor);
      setText($("#channels-page")[0], view.stack.length ? "page " + (view.stack.length + 1) : "");
      if (!haveStats) {
        var users = 0;
        var conns = 0;
        $.each(channels, function (_, c) { users += Number(c.users) || 0; conns += Number(c.connections) || 0; });
        setText($("#stat-users")[0], users);
        setText($("#stat-channels")[0], channels.length);
        setText($("#stat-connections")[0], conns);
      }
      if (!membersView.channel && channels.length && window.matchMedia("(min-width: 1000px)").matches) {
        select(String(channels[0].channel), false);  // on a wide screen, show the busiest start
      }
    }, $.noop);
  }

  // ----- one channel's members -----

  function select(name, focusDetail) {
    membersView = {channel: name, prefix: "", cursor: null, stack: [], next: null};
    $("#member-search").val("").prop("disabled", false);
    $("#members").empty();
    $("#channels tr.channel-row").each(function () {
      var mine = this.getAttribute("data-channel") === name;
      $(this).toggleClass("selected", mine);
      setAttr(this.querySelector(".channel-link"), "aria-pressed", mine ? "true" : "false");
    });
    setText($("#detail-channel")[0], "#" + name);
    refreshMembers();
    if (focusDetail) {
      // On a phone the members are below the channels: bring them on screen.
      var detail = document.getElementById("detail");
      if (detail.getBoundingClientRect().top > window.innerHeight - 80 ||
          detail.getBoundingClientRect().top < 0) {
        detail.scrollIntoView({block: "start"});
      }
    }
  }

  function createMemberRow(m) {
    var row = document.createElement("tr");
    row.className = "member-row";
    var who = cell(row, "user");
    $("<div>").addClass("display-name").appendTo(who);
    $("<div>").addClass("user-id").appendTo(who);
    cell(row, "info");
    cell(row, "since");
    cell(row, "num connections");
    var actions = cell(row, "actions");
    var button = $("<button>").attr("type", "button").addClass("danger small kick").appendTo(actions);
    button.append(document.createTextNode("Kick"), $("<span>").addClass("visually-hidden"));
    return row;
  }

  function updateMemberRow(row, m) {
    var name = m.info && typeof m.info === "object" && m.info.name ? String(m.info.name) : "";
    setAttr(row, "data-user", m.user);
    var display = row.querySelector(".display-name");
    setText(display, name);
    display.hidden = !name;
    setText(row.querySelector(".user-id"), m.user);
    setText(row.querySelector(".info"), m.info === undefined || m.info === null ? "" : JSON.stringify(m.info));
    var since = row.querySelector(".since");
    setText(since, m.since ? fmtAge(toMs(m.since)) + " ago" : "–");
    setAttr(since, "title", m.since ? new Date(toMs(m.since)).toLocaleString() : "");
    setText(row.querySelector(".connections"), m.connections === undefined ? "–" : m.connections);
    var button = row.querySelector("button.kick");
    setAttr(button, "data-user", m.user);
    setText(button.querySelector(".visually-hidden"), " " + m.user);
  }

  function refreshMembers() {
    var view = membersView;
    if (!view.channel) {
      return $.Deferred().resolve().promise();
    }
    var asked = view.channel + "|" + view.prefix + "|" + view.cursor;
    return api("/api/channels/" + encodeURIComponent(view.channel), {data: channelQuery(view)})
      .then(function (body) {
        if (view !== membersView || asked !== view.channel + "|" + view.prefix + "|" + view.cursor) {
          return;
        }
        var members = $.grep(body.members || [], function (m) { return String(m.user).indexOf(view.prefix) === 0; });
        view.next = body.next || null;
        syncRows($("#members")[0], members, function (m) { return String(m.user); }, createMemberRow, updateMemberRow);
        var users = body.users === undefined ? members.length : body.users;
        var conns = body.connections === undefined ? "?" : body.connections;
        setText($("#detail-channel")[0], "#" + view.channel + " \u00b7 " + users + (users === 1 ? " user, " : " users, ") +
          conns + (conns === 1 ? " tab" : " tabs"));
        var more = view.prefix ? (members.length ? "" : "No member's id starts with \u201c" + view.prefix + "\u201d.")
          : (users > members.length ? "Showing " + members.length + " of " + users + " members" +
             (view.stack.length ? " (page " + (view.stack.length + 1) + ")." : ".") : "");
        $("#members-more").text(more).prop("hidden", !more);
        $("#members-next").prop("disabled", !view.next);
        $("#members-first").prop("disabled", !view.cursor);
      }, function (xhr) {
        if (view === membersView && xhr.status === 404) {
          $("#members").empty();
          $("#members-more").text("#" + view.channel + " is empty now.").prop("hidden", false);
        }
      });
  }

  // ----- kick, with confirmation -----

  var kickTarget = null;

  function askKick(user, returnFocusTo) {
    kickTarget = {channel: membersView.channel, user: user, from: returnFocusTo};
    var dialog = document.getElementById("kick-dialog");
    setText($("#kick-title")[0], "Kick " + user + " from #" + kickTarget.channel + "?");
    setText($("#kick-confirm")[0], "Kick " + user);
    dialog.returnValue = "";
    dialog.showModal();
    $("#kick-cancel").trigger("focus");  // the safe choice has the focus
  }

  function kickClosed() {
    var dialog = document.getElementById("kick-dialog");
    var target = kickTarget;
    kickTarget = null;
    if (!target) {
      return;
    }
    if (dialog.returnValue !== "kick") {
      if (target.from && document.body.contains(target.from)) {
        target.from.focus();
      }
      return;
    }
    $("#action-error").prop("hidden", true);
    api("/api/channels/" + encodeURIComponent(target.channel) + "/members/" + encodeURIComponent(target.user),
        {method: "DELETE"}).then(function () {
      $("#member-search").trigger("focus");  // the row and its button go away
      scheduleRefresh();
    }, function (xhr) {
      var why = xhr.status === 401 || xhr.status === 403 ? "the admin token was refused" :
        (xhr.responseJSON && xhr.responseJSON.error) || ("HTTP " + xhr.status);
      $("#action-error").text("Could not kick " + target.user + ": " + why).prop("hidden", false);
    });
  }

  // ----- nodes -----

  function createNodeRow() {
    var row = document.createElement("tr");
    row.className = "node-row";
    $.each(["id", "address", "num held", "num rate", "version", "started", "seen"], function (_, c) { cell(row, c); });
    return row;
  }

  function updateNodeRow(row, n) {
    setAttr(row, "data-node", String(n.id));
    setText(row.querySelector(".id"), n.id);
    setText(row.querySelector(".address"), n.address || "–");
    setText(row.querySelector(".held"), n.held_polls === undefined ? "–" : n.held_polls);
    setText(row.querySelector(".rate"), n.requests_per_s === undefined ? "–" : Number(n.requests_per_s).toFixed(1));
    setText(row.querySelector(".version"), n.version || "–");
    setText(row.querySelector(".started"), n.started ? fmtAge(toMs(n.started)) : "–");
    setText(row.querySelector(".seen"), n.seen ? fmtAge(toMs(n.seen)) + " ago" : "–");
  }

  function refreshNodes() {
    return api("/api/nodes").then(function (body) {
      var nodes = body.nodes || [];
      syncRows($("#nodes")[0], nodes, function (n) { return String(n.id); }, createNodeRow, updateNodeRow);
      setText($("#node-count")[0], nodes.length);
      $("#nodes-note").prop("hidden", true);
    }, function (xhr) {
      if (xhr.status === 404) {
        $("#nodes-note").text("This node does not report nodes (no /api/nodes).").prop("hidden", false);
      }
    });
  }

  // ----- health -----

  function refreshHealth() {
    return api("/readyz", {source: "readyz", timeout: 5000}).then(function (body) {
      showHealth(200, body);
    }, function (xhr) {
      showHealth(xhr.status, xhr.responseJSON);
    });
  }

  function showHealth(status, body) {
    var rows = [["readyz", status ? status + (status === 200 ? " OK" : "") : "no answer"]];
    if (body && typeof body === "object") {
      $.each(body, function (key, value) {
        rows.push([key, typeof value === "object" && value !== null ? JSON.stringify(value) : String(value)]);
      });
    }
    rows.push(["checked", clock(new Date())]);
    var $list = $("#health-list").empty();
    $.each(rows, function (_, r) {
      $("<dt>").text(r[0]).appendTo($list);
      $("<dd>").text(r[1]).appendTo($list);
    });
  }

  // ----- charts (uPlot) from /api/history -----

  function chartSize(el) {
    return {width: Math.max(200, el.clientWidth), height: 180};
  }

  function makeChart(id, series, axes) {
    var el = document.getElementById(id);
    var size = chartSize(el);
    return new window.uPlot({
      width: size.width, height: size.height,
      legend: {live: false},
      cursor: {drag: {x: false, y: false}},
      scales: {x: {time: true}, count: {auto: true, range: function (u, min, max) { return [0, Math.max(1, max)]; }},
               rate: {auto: true, range: function (u, min, max) { return [0, Math.max(1, max)]; }}},
      series: [{}].concat(series),
      axes: axes
    }, [[]].concat($.map(series, function () { return [[]]; })), el);
  }

  function initCharts() {
    if (!window.uPlot) {
      return;
    }
    var axisStyle = {stroke: "#4b5467", grid: {stroke: "#e2e6ee"}, ticks: {stroke: "#e2e6ee"}};
    charts.rate = makeChart("chart-rate", [
      {label: "events/s", scale: "rate", stroke: "#2f6fec", width: 2, fill: "rgba(47,111,236,.10)"},
      {label: "users online", scale: "count", stroke: "#17803d", width: 2}
    ], [$.extend({}, axisStyle), $.extend({scale: "rate", label: "events/s"}, axisStyle),
        $.extend({scale: "count", side: 1, label: "users", grid: {show: false}}, axisStyle)]);
    charts.lag = makeChart("chart-lag", [
      {label: "p50 ms", scale: "rate", stroke: "#17803d", width: 2},
      {label: "p99 ms", scale: "rate", stroke: "#b45309", width: 2}
    ], [$.extend({}, axisStyle), $.extend({scale: "rate", label: "ms"}, axisStyle)]);
    $(window).on("resize", function () {
      $.each({rate: "chart-rate", lag: "chart-lag"}, function (key, id) {
        charts[key].setSize(chartSize(document.getElementById(id)));
      });
    });
  }

  function num(v) {
    return v === null || v === undefined ? null : Number(v);
  }

  function refreshHistory() {
    return api("/api/history", {data: {minutes: HISTORY_MINUTES}}).then(function (body) {
      var points = body.points || [];
      var interval = Number(body.interval) || 10;
      var ts = [];
      var rate = [];
      var users = [];
      var p50 = [];
      var p99 = [];
      $.each(points, function (_, p) {
        ts.push(toMs(p.ts) / 1000);
        rate.push(p.events === null || p.events === undefined ? null : Number(p.events) / interval);
        users.push(num(p.users));
        p50.push(num(p.offline_lag_p50_ms));
        p99.push(num(p.offline_lag_p99_ms));
      });
      if (charts.rate) {
        charts.rate.setData([ts, rate, users]);
        charts.lag.setData([ts, p50, p99]);
      }
      setText($("#history-span")[0], points.length ? "last " + HISTORY_MINUTES + " minutes, every " + interval + " s" : "");
      $("#history-note").text(points.length ? "" : "No history yet: a point is written every " + interval + " s.")
        .prop("hidden", points.length > 0);
    }, function (xhr) {
      if (xhr.status === 404) {
        $("#history-note").text("This node keeps no history (no /api/history).").prop("hidden", false);
      }
    });
  }

  // ----- live feed -----

  function describe(event) {
    var who = event.info && typeof event.info === "object" && event.info.name ?
      String(event.info.name) + " (" + event.user + ")" : String(event.user);
    if (event.type === "message") {
      return [["author", who], ["text", String(event.data === undefined ? "" : event.data)]];
    }
    if (event.reason === "kicked") {
      return [["author", who], ["verb", "was kicked" + (event.by ? " by " + event.by : "")]];
    }
    var verbs = {join: "joined", leave: "left", offline: "went offline"};
    return [["author", who], ["verb", verbs[event.type] || String(event.type)]];
  }

  function showEvent(event) {
    var kind = event.reason === "kicked" ? "kicked" : String(event.type).replace(/[^a-z]/g, "");
    var $item = $("<li>").addClass("feed-item feed-" + kind);
    var when = event.ts ? new Date(toMs(event.ts)) : new Date();
    $("<time>").attr("datetime", when.toISOString()).text(clock(when)).appendTo($item);
    var $body = $("<span>").addClass("feed-body").appendTo($item);
    if (event.channel !== undefined) {
      $body.append($("<span>").addClass("chan").text("#" + event.channel), " ");
    }
    $.each(describe(event), function (_, part) {
      $body.append($("<span>").addClass(part[0]).text(part[1]), " ");  // the space reads well when copied
    });
    var $feed = $("#events");
    $feed.prepend($item);  // newest first: the operator reads from the top
    while ($feed.children().length > FEED_LIMIT) {
      $feed.children().last().remove();
    }
    if (when.getTime() > Date.now() - 60000) {
      recent.push(when.getTime());
    }
  }

  /** Refresh what events change, at most every 300 ms however busy the feed is. */
  function scheduleRefresh() {
    if (refreshTimer) {
      return;
    }
    refreshTimer = setTimeout(function () {
      refreshTimer = null;
      refreshChannels();
      refreshMembers();
      refreshStats();
    }, 300);
  }

  /** Long-poll /api/events from a cursor forever; back off (at most 5 s) when it fails. */
  function followEvents() {
    var cursor = "0";        // from the start of the retained feed (cursors are opaque strings)
    var failures = 0;
    function next() {
      api("/api/events", {data: {cursor: cursor}, timeout: 65000, source: "events"}).then(function (body) {
        failures = 0;
        if (body.cursor !== undefined && body.cursor !== null) {
          cursor = body.cursor;
        }
        var events = (body.events || []).slice().sort(function (a, b) { return (Number(a.id) || 0) - (Number(b.id) || 0); });
        $.each(events, function (_, event) { showEvent(event); });
        if (events.length || body.reset) {
          scheduleRefresh();
        }
        setTimeout(next, body.reconnect ? Math.random() * 500 : 0);  // a closing node: soon, not all at once
      }, function (xhr) {
        failures = needsToken(xhr) ? 3 : failures + 1;  // waiting for a token: retry within 1-2 s
        var ceiling = Math.min(5000, 500 * Math.pow(2, failures - 1));
        setTimeout(next, ceiling / 2 + Math.random() * ceiling / 2);
      });
    }
    next();
  }

  function updateRate() {
    var cutoff = Date.now() - 60000;
    while (recent.length && recent[0] < cutoff) {
      recent.shift();
    }
    setText($("#stat-rate")[0], recent.length);
  }

  // ----- controls -----

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  function bindPager(view, first, next, refresh) {
    $(first).on("click", function () {
      var v = view();
      v.cursor = null;
      v.stack = [];
      refresh();
    });
    $(next).on("click", function () {
      var v = view();
      if (v.next) {
        v.stack.push(v.cursor);
        v.cursor = v.next;
        refresh();
      }
    });
  }

  $(function () {
    try {
      $("#token").val(window.sessionStorage.getItem("presence.adminToken") || "");
    } catch (e) { /* storage disabled */ }
    $("#token").on("input change", function () {
      try {
        window.sessionStorage.setItem("presence.adminToken", token());
      } catch (e) { /* storage disabled */ }
      refreshChannels();  // the reads need the token too: show the data at once
      refreshMembers();
      refreshStats();
      refreshNodes();
      refreshHistory();
    });
    $("#channels").on("click", "button.channel-link", function () {
      select($(this).closest("tr").attr("data-channel"), true);
    });
    $("#members").on("click", "button.kick", function () {
      askKick($(this).attr("data-user"), this);
    });
    $("#kick-dialog").on("close", kickClosed);
    $("#channel-search").on("input", debounce(function () {
      channelsView = {prefix: String($("#channel-search").val()).trim(), cursor: null, stack: [], next: null};
      refreshChannels();
    }, 200));
    $("#member-search").on("input", debounce(function () {
      membersView.prefix = String($("#member-search").val()).trim();
      membersView.cursor = null;
      membersView.stack = [];
      refreshMembers();
    }, 200));
    bindPager(function () { return channelsView; }, "#channels-first", "#channels-next", refreshChannels);
    bindPager(function () { return membersView; }, "#members-first", "#members-next", refreshMembers);
    initCharts();
    refreshHealth();
    refreshStats();
    refreshChannels();
    refreshNodes();
    refreshHistory();
    followEvents();
    // Counts also change without an event (a second tab closing): re-read them regularly.
    setInterval(function () { refreshChannels(); refreshMembers(); refreshStats(); }, 2000);
    setInterval(refreshHealth, 3000);
    setInterval(refreshNodes, 5000);
    setInterval(refreshHistory, 10000);
    setInterval(updateRate, 1000);
  });
}(window.jQuery));
