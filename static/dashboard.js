/*
 * The ops dashboard at "/dashboard": channels and their counts, the members of one channel
 * (with a kick button), a live feed across channels (long-poll on /api/events), a chart of
 * users online, and node/store health from /readyz.
 *
 * The live feed drives freshness: every event batch triggers a refresh of the counts and of
 * the selected channel, so a change shows within a second; timers refresh anyway in case
 * the feed is down. Every string from users or the service is inserted with .text().
 */
(function ($) {
  "use strict";

  var CHART_SPAN = 300;      // seconds of history the chart keeps
  var CHART_MIN_SPAN = 60;   // the chart never shows less than this, so a fresh page reads well
  var FEED_LIMIT = 300;
  var PAGE_LIMIT = 20;       // pages of /api/channels fetched per refresh, at most
  var selected = null;       // the channel whose members are shown
  var samples = [];          // [{t: seconds, users: n}] for the chart
  var recent = [];           // timestamps (ms) of events seen, for the rate
  var refreshTimer = null;

  function token() {
    return String($("#token").val() || "").trim();
  }

  // ----- access control: KEEP in any rewrite. With --admin-token every /api/* read (and
  // /metrics) needs "Authorization: Bearer <token>"; api() is the one place that adds it,
  // from the #token field (kept in sessionStorage under "presence.adminToken"). A 401 means
  // the token is missing or wrong: needsToken() says so on the page.
  function api(settings) {
    var headers = {};
    if (token()) {
      headers.Authorization = "Bearer " + token();
    }
    return $.ajax($.extend({dataType: "json", timeout: 10000, headers: headers, cache: false}, settings));
  }

  function needsToken(xhr) {
    return Boolean(xhr && xhr.status === 401);
  }
  // ----- end of access control

  function fmtSince(since) {
    var seconds = Number(since);
    if (!seconds) {
      return {text: "–", title: ""};
    }
    if (seconds > 1e12) {
      seconds /= 1000;       // the service sends milliseconds
    }
    var age = Math.max(0, Math.round(Date.now() / 1000 - seconds));
    var text = age < 60 ? age + "s" : age < 3600 ? Math.floor(age / 60) + "m " + (age % 60) + "s"
      : Math.floor(age / 3600) + "h " + Math.floor(age % 3600 / 60) + "m";
    return {text: text + " ago", title: new Date(seconds * 1000).toLocaleString()};
  }

  function channelName(c) {
    return String(c.channel !== undefined ? c.channel : c.name);
  }

  // ----- channels and totals -----

  /** Fetch every page of /api/channels (bounded); resolves with the list of channels. */
  function fetchChannels() {
    var all = [];
    var done = $.Deferred();
    function page(cursor, n) {
      api({url: "/api/channels", data: cursor ? {cursor: cursor, limit: 1000} : {limit: 1000}}).then(function (body) {
        all = all.concat(body.channels || []);
        if (body.next && n < PAGE_LIMIT) {
          page(body.next, n + 1);  // `next` is the last name of this page
        } else {
          done.resolve(all);
        }
      }, function (xhr) {
        done.reject(xhr);
      });
    }
    page(null, 1);
    return done.promise();
  }

  function refreshChannels() {
    return fetchChannels().then(function (channels) {
      channels.sort(function (a, b) {
        return (b.users || 0) - (a.users || 0) || (channelName(a) < channelName(b) ? -1 : 1);
      });
      var users = 0;
      var connections = 0;
      var $rows = $("#channels").empty();
      $.each(channels, function (_, c) {
        var name = channelName(c);
        users += Number(c.users) || 0;
        connections += Number(c.connections) || 0;
        var $row = $("<tr>").addClass("channel-row").attr("data-channel", name)
          .toggleClass("selected", name === selected).toggleClass("idle", !Number(c.users));
        $("<td>").addClass("name").text(name).appendTo($row);
        $("<td>").addClass("num users").text(c.users === undefined ? "–" : c.users).appendTo($row);
        $("<td>").addClass("num connections").text(c.connections === undefined ? "–" : c.connections).appendTo($row);
        $rows.append($row);
      });
      $("#channel-count").text(channels.length);
      $("#channels-empty").prop("hidden", channels.length > 0);
      $("#stat-channels").text(channels.length);
      $("#stat-users").text(users);
      $("#stat-connections").text(connections);
      $("#updated").text("updated " + new Date().toLocaleTimeString());
      addSample(users);
      if (!selected && channels.length) {
        select(channelName(channels[0]));
      }
    }, function (xhr) {
      $("#updated").text(needsToken(xhr) ? "enter the admin token to see the data" : "cannot reach /api/channels");
    });
  }

  // ----- one channel's members -----

  function select(name) {
    selected = name;
    $("#channels tr").each(function () {
      $(this).toggleClass("selected", $(this).attr("data-channel") === name);
    });
    $("#detail-channel").text("#" + name);
    refreshDetail();
  }

  function refreshDetail() {
    if (!selected) {
      return;
    }
    var name = selected;
    api({url: "/api/channels/" + encodeURIComponent(name), data: {limit: 100}}).then(function (body) {
      if (name !== selected) {
        return;
      }
      var members = body.members || [];
      var $rows = $("#members").empty();
      $.each(members, function (_, m) {
        var $row = $("<tr>").addClass("member-row").attr("data-user", m.user);
        var since = fmtSince(m.since);
        var $who = $("<td>").addClass("user").appendTo($row);
        if (m.info && typeof m.info === "object" && m.info.name) {
          $("<div>").addClass("display-name").text(String(m.info.name)).appendTo($who);
        }
        $("<div>").addClass("user-id").text(m.user).appendTo($who);
        $("<td>").addClass("info").text(m.info === undefined || m.info === null ? "" : JSON.stringify(m.info))
          .appendTo($row);
        $("<td>").addClass("since").text(since.text).attr("title", since.title).appendTo($row);
        $("<td>").addClass("num connections").text(m.connections === undefined ? "–" : m.connections)
          .appendTo($row);
        $("<td>").append($("<button>").addClass("danger small kick").attr("type", "button")
          .attr("data-user", m.user).text("kick")).appendTo($row);
        $rows.append($row);
      });
      var total = body.users !== undefined ? body.users : members.length;
      var more = total > members.length ? "Showing " + members.length + " of " + total + " members." : "";
      $("#members-more").text(more).prop("hidden", !more);
      var conns = body.connections === undefined ? "?" : body.connections;
      $("#detail-channel").text("#" + name + " · " + total + (total === 1 ? " user, " : " users, ") +
        conns + (conns === 1 ? " connection" : " connections"));
    }, function (xhr) {
      if (name === selected && xhr.status === 404) {
        $("#members").empty();
      }
    });
  }

  function kick(user) {
    var name = selected;
    $("#action-error").prop("hidden", true);
    api({url: "/api/channels/" + encodeURIComponent(name) + "/members/" + encodeURIComponent(user),
         method: "DELETE"}).then(function () {
      scheduleRefresh();
    }, function (xhr) {
      var why = xhr.status === 401 || xhr.status === 403 ? "the admin token was refused" :
        (xhr.responseJSON && xhr.responseJSON.error) || ("HTTP " + xhr.status);
      $("#action-error").text("Could not kick " + user + ": " + why).prop("hidden", false);
    });
  }

  // ----- health -----

  function refreshHealth() {
    $.ajax({url: "/readyz", timeout: 5000, cache: false, dataType: "text"}).always(function (a, status, c) {
      var xhr = status === "success" ? c : a;
      var ok = status === "success";
      var body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch (e) {
        body = null;
      }
      $("#health").attr("class", "pill " + (ok ? "pill-ok" : "pill-bad"))
        .text(ok ? "ready" : (xhr.status ? "not ready (" + xhr.status + ")" : "unreachable"));
      var $list = $("#health-list").empty();
      function row(key, value) {
        $("<dt>").text(key).appendTo($list);
        $("<dd>").text(typeof value === "object" && value !== null ? JSON.stringify(value) : String(value))
          .appendTo($list);
      }
      row("readyz", xhr.status ? xhr.status + " " + (ok ? "OK" : (xhr.statusText || "error")) : "no answer");
      if (body && typeof body === "object") {
        $.each(body, row);
      } else if (xhr.responseText) {
        row("body", String(xhr.responseText).slice(0, 200));
      }
      row("checked", new Date().toLocaleTimeString());
    });
  }

  // ----- live feed -----

  function describe(event) {
    var who = event.info && typeof event.info === "object" && event.info.name ?
      String(event.info.name) + " (" + event.user + ")" : String(event.user);
    if (event.type === "message") {
      return [["author", who], ["text", String(event.data === undefined ? "" : event.data)]];
    }
    var verbs = {join: "joined", leave: "left", offline: "went offline"};
    return [["author", who], ["verb", event.reason === "kicked" ? "was kicked" : (verbs[event.type] || event.type)]];
  }

  function showEvent(event) {
    var kind = event.reason === "kicked" ? "kicked" : String(event.type).replace(/[^a-z]/g, "");
    var $item = $("<li>").addClass("feed-item feed-" + kind);
    var ms = Number(event.ts);
    var ts = ms ? new Date(ms < 1e12 ? ms * 1000 : ms) : new Date();  // the service sends ms
    $("<time>").text(ts.toLocaleTimeString()).appendTo($item);
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
    var when = ts.getTime();
    if (when > Date.now() - 60000) {
      recent.push(when);     // the backlog shown at load counts only if it is recent
    }
  }

  function scheduleRefresh() {
    if (refreshTimer) {
      return;
    }
    refreshTimer = setTimeout(function () {
      refreshTimer = null;
      refreshChannels();
      refreshDetail();
    }, 100);
  }

  /** Long-poll /api/events from a cursor forever; back off with jitter when it fails. */
  function followEvents() {
    var cursor = "0";        // from the start of the retained feed (cursors are opaque strings)
    var failures = 0;
    function next() {
      api({url: "/api/events", data: {cursor: cursor}, timeout: 65000})
        .then(function (body) {
          failures = 0;
          if (body.cursor !== undefined && body.cursor !== null) {
            cursor = body.cursor;
          }
          var events = body.events || [];
          $.each(events, function (_, event) { showEvent(event); });
          if (events.length || body.reset) {
            scheduleRefresh();
          }
          if (body.reconnect) {
            setTimeout(next, Math.random() * 500);  // the node is shutting down: soon, not all at once
          } else {
            next();
          }
        }, function (xhr) {
          failures = needsToken(xhr) ? 3 : failures + 1;  // waiting for a token: retry within 1-2 s
          var ceiling = Math.min(15000, 500 * Math.pow(2, failures - 1));
          setTimeout(next, ceiling / 2 + Math.random() * ceiling / 2);
        });
    }
    next();
  }

  // ----- chart -----

  function addSample(users) {
    var now = Date.now() / 1000;
    samples.push({t: now, users: users});
    while (samples.length && samples[0].t < now - CHART_SPAN - 5) {
      samples.shift();
    }
    drawChart();
  }

  function svg(tag, attrs) {
    var node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    $.each(attrs || {}, function (k, v) { node.setAttribute(k, v); });
    return node;
  }

  /** A step chart of users online over the last CHART_SPAN seconds, in plain SVG. */
  function drawChart() {
    var el = document.getElementById("chart");
    var width = el.clientWidth || 600;
    var height = el.clientHeight || 180;
    var pad = {left: 36, right: 10, top: 10, bottom: 22};
    var now = Date.now() / 1000;
    var span = samples.length ? Math.min(CHART_SPAN, Math.max(CHART_MIN_SPAN, now - samples[0].t)) : CHART_MIN_SPAN;
    var tickEvery = span > 120 ? 60 : 15;
    var peak = 0;
    $.each(samples, function (_, s) { peak = Math.max(peak, s.users); });
    var step = peak <= 5 ? 1 : Math.pow(10, Math.floor(Math.log10(peak)));
    if (peak / step > 5) {
      step *= peak / step > 10 ? 5 : 2;
    }
    var top = Math.max(step * Math.ceil((peak || 1) / step), 1);
    function x(t) { return pad.left + (width - pad.left - pad.right) * (1 - (now - t) / span); }
    function y(v) { return pad.top + (height - pad.top - pad.bottom) * (1 - v / top); }
    el.setAttribute("viewBox", "0 0 " + width + " " + height);
    while (el.firstChild) {
      el.removeChild(el.firstChild);
    }
    for (var v = 0; v <= top; v += step) {
      el.appendChild(svg("line", {x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v),
                                  stroke: "#e2e6ee", "stroke-width": 1}));
      var label = svg("text", {x: pad.left - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 11, fill: "#6b7485"});
      label.textContent = String(v);
      el.appendChild(label);
    }
    for (var ago = 0; ago <= span; ago += tickEvery) {
      var tick = svg("text", {x: x(now - ago), y: height - 6, "text-anchor": ago === 0 ? "end" : "middle",
                              "font-size": 11, fill: "#6b7485"});
      tick.textContent = ago === 0 ? "now" : ago % 60 ? "-" + ago + "s" : "-" + ago / 60 + "m";
      el.appendChild(tick);
    }
    $("#chart-span").text(span >= CHART_SPAN ? "last 5 minutes" : "since this page opened");
    if (!samples.length) {
      return;
    }
    var points = [];
    $.each(samples, function (i, s) {
      var t = Math.max(s.t, now - span);
      if (i > 0) {
        points.push(x(t) + "," + y(samples[i - 1].users));
      }
      points.push(x(t) + "," + y(s.users));
    });
    var last = samples[samples.length - 1];
    points.push(x(now) + "," + y(last.users));
    var first = Math.max(samples[0].t, now - span);
    el.appendChild(svg("polygon", {points: x(first) + "," + y(0) + " " + points.join(" ") + " " + x(now) + "," + y(0),
                                   fill: "rgba(47,111,236,.12)"}));
    el.appendChild(svg("polyline", {points: points.join(" "), fill: "none", stroke: "#2f6fec",
                                    "stroke-width": 2, "stroke-linejoin": "round"}));
  }

  function updateRate() {
    var cutoff = Date.now() - 60000;
    while (recent.length && recent[0] < cutoff) {
      recent.shift();
    }
    $("#stat-rate").text(recent.length);
  }

  $(function () {
    try {
      $("#token").val(window.sessionStorage.getItem("presence.adminToken") || "");
    } catch (e) { /* storage disabled */ }
    $("#token").on("change", function () {
      try {
        window.sessionStorage.setItem("presence.adminToken", token());
      } catch (e) { /* storage disabled */ }
      refreshChannels();  // the reads need the token too: show the data at once
    });
    $("#channels").on("click", "tr.channel-row", function () {
      select($(this).attr("data-channel"));
    });
    $("#members").on("click", "button.kick", function () {
      kick($(this).attr("data-user"));
    });
    refreshChannels();
    refreshHealth();
    followEvents();
    // Counts also change without an event (a second tab closing), so poll them every second.
    setInterval(refreshChannels, 1000);
    setInterval(refreshDetail, 1000);
    setInterval(refreshHealth, 5000);
    setInterval(function () { updateRate(); drawChart(); }, 1000);
    $(window).on("resize", drawChart);
  });
}(window.jQuery));
