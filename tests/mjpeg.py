"""A real MJPEG camera for the tests: ``http://127.0.0.1:PORT/stream.mjpg`` served by a small
http.server thread, as many IP cameras serve one (multipart/x-mixed-replace JPEG frames).

:meth:`MJPEGServer.go_away` is the camera vanishing: the stream in progress ends, and new
connections are accepted but never answered (a camera behind a switch that went down), so each
reopening waits for OpenCV's open timeout. With ``per_connection`` the server hangs up each client
after that many frames (a stream that drops).
"""
from __future__ import annotations

import http.server
import threading
import time

import cv2
import numpy as np


class MJPEGServer:
    def __init__(self, frames: list[np.ndarray] | None = None, fps: float = 25.0, per_connection: int | None = None):
        if frames is None:
            frame = np.zeros((120, 160, 3), np.uint8)
            cv2.putText(frame, "cam", (20, 70), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
            frames = [frame]
        self.jpegs = [cv2.imencode(".jpg", f)[1].tobytes() for f in frames]
        self.fps = fps
        self.live = True
        self.closed = False
        self.sent = 0
        self.per_connection = per_connection
        self.connections = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if not outer.live:
                    while not outer.closed:      # accepted, never answered
                        time.sleep(0.05)
                    return
                outer.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while outer.live and (outer.per_connection is None or i < outer.per_connection):
                        jpeg = outer.jpegs[i % len(outer.jpegs)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(jpeg) + jpeg + b"\r\n")
                        outer.sent += 1
                        i += 1
                        time.sleep(1.0 / outer.fps)
                except OSError:
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def go_away(self) -> None:
        self.live = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.live = False
        self.httpd.shutdown()
        self.httpd.server_close()
