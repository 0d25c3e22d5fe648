// A minimal Socket.IO 4 server for bench/fanout_bench.py: the baseline of the fan-out benchmark.
//
//   node server.js PORT          (prints "listening PORT" once it accepts)
//
// Long-polling only (engine.io's polling transport, no WebSocket upgrade). A client joins a
// room by emitting `join` with the room's name (acknowledged with `true`); a `chat` message
// emitted with a room's name and a payload is re-broadcast to every socket of that room.
"use strict";

const { createServer } = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 0);
const http = createServer();
const io = new Server(http, { transports: ["polling"], serveClient: false });

io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack(true);
  });
  socket.on("chat", (room, message) => {
    io.to(room).emit("chat", message);
  });
});

http.listen(port, "127.0.0.1", () => {
  console.log(`listening ${http.address().port}`);
});

process.on("SIGTERM", () => process.exit(0));
