# FunctionBench-style "video_processing" in Python, with OpenCV as
# FunctionBench's: decodes a video frame by frame (cv2.VideoCapture), turns every
# frame gray (cv2.cvtColor) and encodes the gray frames into an XVID (MPEG-4)
# stream (cv2.VideoWriter). FunctionBench downloads an MP4; here the input video
# of vid_name is rendered deterministically (a moving pattern) and encoded once
# per instance (the "object store"), then every call decodes, converts and encodes it.
# Size from the name "big_buck_bunny_{240p|360p|480p|720p}_{N}mb.mp4": a 16:9
# frame of that height, and N × frames-per-MiB frames (the JavaScript version's figures).
# Payload: {vid_name: "big_buck_bunny_240p_1mb.mp4"} (minio_address, bucket_name ignored).
import os
import re
import tempfile
import time

import cv2
import numpy as np

HEIGHTS = {"240p": 240, "360p": 360, "480p": 480, "720p": 720, "1080p": 1080}
FRAMES_PER_MIB = {"240p": 160, "360p": 140, "480p": 100, "720p": 110, "1080p": 90}
FPS = 24.0


def video_of(name):
    m = re.search(r"_(\d+p)_(\d+(?:\.\d+)?)mb", name, re.I)
    res = m.group(1).lower() if m and m.group(1).lower() in HEIGHTS else "240p"
    mib = min(float(m.group(2)), 100) if m else 1
    height = HEIGHTS[res]
    width = round(height * 16 / 9 / 2) * 2
    return res, width, height, max(1, round(mib * FRAMES_PER_MIB[res]))


def render(path, width, height, frames):
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), FPS, (width, height))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write MJPG video here")
    x = np.arange(width, dtype=np.int32)[None, :]
    y = np.arange(height, dtype=np.int32)[:, None]
    for t in range(frames):
        cx = width * (0.5 + 0.3 * np.sin(t / 20))
        cy = height * (0.5 + 0.3 * np.cos(t / 27))
        inside = (x - cx) ** 2 + (y - cy) ** 2 < (height / 5) ** 2
        frame = np.empty((height, width, 3), np.uint8)
        frame[..., 0] = np.where(inside, 230, (x + t) & 255)
        frame[..., 1] = np.where(inside, 180, (y * 2) & 255)
        frame[..., 2] = np.where(inside, 40, ((x >> 3) ^ (y >> 3)) * 8 & 255)
        writer.write(frame)
    writer.release()


videos = {}  # video name -> its file: the "object store" of this instance


def main(args):
    name = args.get("vid_name", "big_buck_bunny_240p_1mb.mp4")
    if not isinstance(name, str):
        raise ValueError("vid_name: a string is required")
    res, width, height, frames = video_of(name)
    src = videos.get(name)
    if src is None:
        src = videos[name] = os.path.join(tempfile.gettempdir(), f"in-{res}-{frames}.avi")
        render(src, width, height, frames)
    out = os.path.join(tempfile.gettempdir(), "output.avi")
    t0 = time.perf_counter()
    cap = cv2.VideoCapture(src)
    writer = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*"XVID"), FPS, (width, height), isColor=False)
    if not cap.isOpened() or not writer.isOpened():
        raise RuntimeError("OpenCV cannot read MJPG or write XVID video here")
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        writer.write(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
        n += 1
    cap.release()
    writer.release()
    return {"vid_name": name, "resolution": f"{width}x{height}", "frames": n, "bytes_out": os.path.getsize(out), "latency_ms": round((time.perf_counter() - t0) * 1000, 3)}
