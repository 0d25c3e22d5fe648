/*
 * The demo page at "/": pick a name and a channel, see the members, the live feed, and chat.
 * Every string that came from a user is inserted with .text(), never as HTML.
 * Query parameters prefill the form: ?user=alice&name=Alice&channel=lobby&join=1 joins at once.
 * The member count is the service's (everyone in the channel); the list shows the first
 * MEMBERS_SHOWN and says "and N more". While the connection is not live (reconnecting,
 * kicked) the list is greyed and says so: it may be out of date.
 */
(function ($) {
  "use strict";

  var client = null;
  var channel = null;
  var infos = {};            // user -> info, from the members list: message events may carry none
  var FEED_LIMIT = 200;
  var MEMBERS_SHOWN = 100;   // list items at most: a channel of thousands stays a short page
  var ownJoinShown = false;  // our own join is shown once, whether or not its event arrives
  var lastMembers = [];

  function displayName(user, info) {
    info = info || infos[user];
    var name = info && typeof info === "object" && info.name ? String(info.name) : "";
    return name || user;
  }

  /** hh:mm:ss of an event time (the service sends milliseconds since the epoch). */
  function clock(ts) {
    var ms = Number(ts);
    var date = ms ? new Date(ms < 1e12 ? ms * 1000 : ms) : new Date();
    if (isNaN(date.getTime())) {
      date = new Date();
    }
    return date.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit"});
  }

  function setState(state, detail) {
    var labels = {
      idle: "not joined", connecting: "connecting…", online: "online",
      retrying: "reconnecting…", kicked: "kicked", closed: "not joined"
    };
    var text = labels[state] || state;
    if (state === "retrying" && detail && detail.attempt) {
      text += " (" + detail.attempt + ")";
    }
    $("#state").attr("class", "pill pill-" + state).text(text);
    setStale(state);
  }

  function renderMembers(members) {
    lastMembers = members;
    var $list = $("#members").empty();
    $.each(members.slice(0, MEMBERS_SHOWN), function (_, m) {
      if (m.info) {
        infos[m.user] = m.info;
      }
      var $item = $("<li>").addClass("member").attr("data-user", m.user);
      $("<span>").addClass("avatar").text(displayName(m.user, m.info).charAt(0).toUpperCase())
        .appendTo($item);
      var $who = $("<span>").addClass("who").appendTo($item);
      $("<span>").addClass("name").text(displayName(m.user, m.info)).appendTo($who);
      $("<span>").addClass("user-id").text(m.user).appendTo($who);
      if (client && m.user === client.user) {
        $("<span>").addClass("badge").text("you").appendTo($item);
      }
      $list.append($item);
    });
    renderCount();
    $("#members-empty").prop("hidden", members.length > 0);
  }

  /** The service's count of everyone in the channel, and "and N more" under the list. */
  function renderCount() {
    var users = client && channel ? client.users(channel) : null;
    var total = users === null || users === undefined ? lastMembers.length : Math.max(users, lastMembers.length);
    var shown = Math.min(lastMembers.length, MEMBERS_SHOWN);
    $("#member-count").text(total);
    $("#members .more").remove();
    if (total > shown) {
      $("<li>").addClass("member more").text("and " + (total - shown) + " more").appendTo("#members");
    }
  }

  /** Grey the members while they may be out of date, and say why. */
  function setStale(state) {
    var why = {retrying: "Reconnecting: this list may be out of date.",
               kicked: "You were removed: this list no longer updates."}[state] || "";
    $(".members-card").toggleClass("stale", !!why);
    $("#stale-note").text(why).prop("hidden", !why);
  }

  function addFeed(kind, ts, parts) {
    var $item = $("<li>").addClass("feed-item feed-" + kind);
    $("<time>").text(clock(ts)).appendTo($item);
    var $body = $("<span>").addClass("feed-body").appendTo($item);
    $.each(parts, function (_, part) {
      $body.append($("<span>").addClass(part[0]).text(part[1]), " ");  // the space reads well when copied
    });
    var $feed = $("#feed");
    var atBottom = $feed[0].scrollHeight - $feed.scrollTop() - $feed.outerHeight() < 40;
    $feed.append($item);
    while ($feed.children().length > FEED_LIMIT) {
      $feed.children().first().remove();
    }
    if (atBottom) {
      $feed.scrollTop($feed[0].scrollHeight);
    }
  }

  function showEvent(event) {
    if (event.type === "join" && client && event.user === client.user && ownJoinShown) {
      return;  // already shown as "(you) joined" when we came online
    }
    if ((event.type === "leave" || event.type === "offline") && client && event.user === client.user) {
      ownJoinShown = false;  // we come back with a new join, worth showing
    }
    var who = displayName(event.user, event.info);
    if (event.type === "message") {
      addFeed("message", event.ts, [["author", who], ["text", event.data === undefined ? "" : String(event.data)]]);
      return;
    }
    var verbs = {join: "joined", leave: "left", offline: "went offline"};
    var verb = event.reason === "kicked" ? "was kicked" : (verbs[event.type] || event.type);
    addFeed(event.reason === "kicked" ? "kicked" : event.type, event.ts, [["author", who], ["verb", verb]]);
  }

  function showError(text) {
    $("#form-error").text(text).prop("hidden", !text);
  }

  function setJoined(joined) {
    $("body").toggleClass("joined", joined);
    $("#summary").text(joined && client ? "You are " + displayName(client.user) + " in #" + channel : "");
    $("#join").prop("disabled", joined);
    $("#leave").prop("disabled", !joined);
    $("#user, #display-name, #channel").prop("readonly", joined);
    $("#message, #send").prop("disabled", !joined);
  }

  function join() {
    var user = String($("#user").val()).trim();
    var name = String($("#display-name").val()).trim();
    var room = String($("#channel").val()).trim();
    if (!/^[A-Za-z0-9_.@-]{1,128}$/.test(user)) {
      showError("User id: 1 to 128 of letters, digits and _ . @ -");
      return;
    }
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(room)) {
      showError("Channel: 1 to 64 of letters, digits and _ . -");
      return;
    }
    showError("");
    try {
      window.localStorage.setItem("presence.demo", JSON.stringify({user: user, name: name, channel: room}));
    } catch (e) { /* storage disabled: nothing to remember */ }
    if (client) {
      client.close();  // e.g. after a kick: the old client must not keep this tab's id
    }
    channel = room;
    infos = {};
    ownJoinShown = false;
    if (name) {
      infos[user] = {name: name};
    }
    client = $.presence({user: user, info: name ? {name: name} : {}});
    client.on("state", function (state, _, detail) {
      setState(state, detail);
      if (state === "online" && !ownJoinShown) {
        ownJoinShown = true;
        addFeed("join", null, [["author", displayName(user)], ["verb", "(you) joined #" + room]]);
      }
      if (state === "kicked") {
        addFeed("leave", null, [["verb", "You were removed from the channel by an operator."]]);
        setJoined(false);
      }
    }).on("members", function (members) {
      renderMembers(members);
    }).on("count", function () {
      renderCount();
    }).on("event", function (event) {
      showEvent(event);
    }).on("reset", function () {
      addFeed("reset", null, [["verb", "Resynchronised: some events were missed."]]);
    });
    $("#feed").empty();
    $("#feed-channel").text("#" + room);
    setJoined(true);
    client.join(room);
  }

  function leave() {
    if (client) {
      client.close();
      client = null;
    }
    renderMembers([]);
    setState("idle");
    setJoined(false);
    addFeed("leave", null, [["verb", "You left #" + channel + "."]]);
  }

  function prefill() {
    var saved = {};
    try {
      saved = JSON.parse(window.localStorage.getItem("presence.demo") || "{}") || {};
    } catch (e) { /* no saved form */ }
    var query = new URLSearchParams(window.location.search);
    $("#user").val(query.get("user") || saved.user || "");
    $("#display-name").val(query.get("name") || saved.name || "");
    $("#channel").val(query.get("channel") || saved.channel || "lobby");
    return query.get("join") === "1";
  }

  $(function () {
    $("#join-form").on("submit", function (e) {
      e.preventDefault();
      join();
    });
    $("#leave").on("click", leave);
    $("#chat-form").on("submit", function (e) {
      e.preventDefault();
      var text = $("#message").val();
      if (!client || !String(text).trim()) {
        return;
      }
      client.send(channel, text).then(function () {
        $("#message").val("").trigger("focus");
      }, function () {
        addFeed("error", null, [["verb", "Could not send the message; try again."]]);
      });
    });
    if (prefill()) {
      join();
    }
  });
}(window.jQuery));
