"""Benchmark: extraction time and memory of large G-code, 3MF and UFP files beside 1 MB ones.

Synthesizes, in a temporary directory, for each kind a small (1 MB) and a
large file (defaults: 500 MB G-code, 200 MB 3MF project, 200 MB 3MF plate
file, 200 MB UFP - sizes on disk), then extracts each in a fresh Python
process (``extractor.metadata.extract``, thumbnail included) and prints the
wall time, the process's peak resident set (``VmHWM``) and its growth
over the same process right after the imports (what the extraction itself
costs), and the large/small time ratio. Prints figures, asserts nothing.

    .tools/bin/uv run --frozen python tools/bench_formats.py
    .tools/bin/uv run --frozen python tools/bench_formats.py --large-gcode-mb 50 --large-mb 20   # quick

The files:

* G-code: PrusaSlicer-style (header, ``;LAYER_CHANGE`` blocks of moves, footer
  summary and config; ``tools/bench_extract.synthesize``) with a 300x300 PNG
  thumbnail block in the header;
* 3MF project: one model part of many mesh objects (2,000 triangles each,
  pseudo-random coordinates so deflate cannot shrink it unrealistically), one
  build item per object, ``Metadata/plate_1.png``;
* 3MF one mesh: a single mesh object just under the reader's in-memory bound
  (``MAX_GEOMETRY_TRIANGLES``): the most memory a file whose box, area and
  volume are computed can take (the size option does not apply beyond it);
* 3MF plate file (``.gcode.3mf``): BambuStudio layout, ``Metadata/plate_1.gcode``
  with a HEADER_BLOCK and a body of moves, ``slice_info.config``, an empty build;
* UFP: Cura's layout, ``/3D/model.gcode`` with a Cura header and moves,
  ``/Metadata/thumbnail.png``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.bench_extract import synthesize as synthesize_gcode  # noqa: E402

_CHILD = r"""
import json, sys, time
from pathlib import Path
from extractor.metadata import extract
import extractor.metadata.bgcode, extractor.metadata.stl, extractor.metadata.threemf, extractor.metadata.ufp
import PIL.Image, PIL.PngImagePlugin

def hwm_kib():
    # VmHWM: this process image's resident high-water mark (a new one per exec, unlike
    # getrusage's ru_maxrss, which Linux carries over from the parent across fork+exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

base = hwm_kib()  # after every import: what extraction adds is above
path = Path(sys.argv[1])
start = time.perf_counter()
result = extract(path, path.name)
elapsed = time.perf_counter() - start
peak = hwm_kib()
m = result.metadata
print(json.dumps({"seconds": elapsed, "base_kib": base, "peak_kib": peak,
                  "facts": {k: m[k] for k in ("format", "print_time_s", "layer_count", "triangle_count",
                                              "object_count", "geometry_skipped", "volume_mm3") if k in m}
                  | ({"bbox": True} if "bbox_mm" in m else {}),
                  "thumbnail": None if result.thumbnail is None else [result.thumbnail.width, result.thumbnail.height]}))
"""

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="model" ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/>'
    '<Default Extension="png" ContentType="image/png"/></Types>'
)
MODEL_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Target="/3D/3dmodel.model" Id="rel-1" Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/>'
    "</Relationships>"
)
UFP_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Target="/3D/model.gcode" Id="rel0" Type="http://schemas.ultimaker.org/package/2018/relationships/gcode"/>'
    '<Relationship Target="/Metadata/thumbnail.png" Id="rel1" '
    'Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/thumbnail"/></Relationships>'
)


def _png(size: int = 300) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.radial_gradient("L").resize((size, size)).convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def _moves(seed: int, lines: int = 20_000) -> bytes:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 250, size=(lines, 2))
    return "".join(f"G1 X{x:.3f} Y{y:.3f} E{0.01 + (x % 1) / 100:.5f}\n" for x, y in xy).encode()


def _fill(stream, target_disk_bytes: int, fp, head: bytes, block_for, tail: bytes = b"") -> None:
    """Write ``head``, then blocks until the archive on disk reaches the target, then ``tail``."""
    stream.write(head)
    index = 0
    while fp.tell() < target_disk_bytes:
        stream.write(block_for(index))
        index += 1
    stream.write(tail)


def make_gcode(path: Path, disk_bytes: int) -> Path:
    synthesize_gcode(path, disk_bytes, compress=False)
    import base64

    encoded = base64.b64encode(_png()).decode()
    thumb = "".join(f"; {encoded[i:i + 78]}\n" for i in range(0, len(encoded), 78))
    block = f";\n; thumbnail begin 300x300 {len(encoded)}\n{thumb}; thumbnail end\n;\n".encode()
    data_head = path.open("rb").read(200)
    first_line = data_head.split(b"\n", 1)[0] + b"\n"
    with path.open("r+b") as fh:  # rewrite the header with the thumbnail, streaming the rest
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as out:
            out.write(first_line + block)
            fh.seek(len(first_line))
            while chunk := fh.read(1 << 22):
                out.write(chunk)
    tmp.replace(path)
    return path


def _mesh_object(object_id: int, rng: np.random.Generator, triangles: int = 2000) -> bytes:
    vertices = rng.uniform(0, 50, size=(triangles // 2 + 2, 3))
    faces = rng.integers(0, len(vertices), size=(triangles, 3))
    v = "".join(f'<vertex x="{x:.4f}" y="{y:.4f}" z="{z:.4f}"/>' for x, y, z in vertices)
    t = "".join(f'<triangle v1="{a}" v2="{b}" v3="{c}"/>' for a, b, c in faces)
    return f'<object id="{object_id}" type="model"><mesh><vertices>{v}</vertices><triangles>{t}</triangles></mesh></object>\n'.encode()


def make_3mf_project(path: Path, disk_bytes: int) -> Path:
    rng = np.random.default_rng(7)
    templates = [_mesh_object(0, rng) for _ in range(8)]
    count = [0]

    def block(index: int) -> bytes:
        count[0] = index + 1
        return templates[index % len(templates)].replace(b'<object id="0"', f'<object id="{index + 1}"'.encode(), 1)

    with open(path, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("_rels/.rels", MODEL_RELS)
        zf.writestr("Metadata/plate_1.png", _png(512))
        with zf.open("3D/3dmodel.model", "w", force_zip64=True) as stream:
            head = (b'<?xml version="1.0" encoding="UTF-8"?>\n<model unit="millimeter" '
                    b'xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02">'
                    b'<metadata name="Application">bench_formats</metadata><resources>\n')
            _fill(stream, disk_bytes, raw, head, block)
            items = "".join(f'<item objectid="{i + 1}"/>' for i in range(count[0]))
            stream.write(f"</resources><build>{items}</build></model>\n".encode())
    return path


def _torus_object(object_id: int, triangles: int) -> bytes:
    """A closed, consistently wound torus of about ``triangles`` triangles (so its volume is computed)."""
    rings = max(3, int((triangles / 2) ** 0.5 * 1.4))
    sides = max(3, triangles // (2 * rings))
    u, v = np.meshgrid(np.arange(rings) * 2 * np.pi / rings, np.arange(sides) * 2 * np.pi / sides, indexing="ij")
    x = (40 + 10 * np.cos(v)) * np.cos(u) + 50
    y = (40 + 10 * np.cos(v)) * np.sin(u) + 50
    z = 10 * np.sin(v) + 10
    vertices = "".join(f'<vertex x="{a:.5f}" y="{b:.5f}" z="{c:.5f}"/>'
                       for a, b, c in zip(x.ravel(), y.ravel(), z.ravel()))
    i, j = np.meshgrid(np.arange(rings), np.arange(sides), indexing="ij")
    a = i * sides + j
    b = ((i + 1) % rings) * sides + j
    c = ((i + 1) % rings) * sides + (j + 1) % sides
    d = i * sides + (j + 1) % sides
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    tris = "".join(f'<triangle v1="{p}" v2="{q}" v3="{r}"/>' for p, q, r in faces)
    return (f'<object id="{object_id}" type="model"><mesh><vertices>{vertices}</vertices>'
            f"<triangles>{tris}</triangles></mesh></object>\n").encode()


def make_3mf_one_mesh(path: Path, disk_bytes: int) -> Path:
    """One mesh object, as many triangles as ~``disk_bytes`` hold but at most just under the
    reader's in-memory bound (``threemf.MAX_GEOMETRY_TRIANGLES``), closed (a torus): the worst
    case for memory of a file whose box, area and volume are all computed."""
    from extractor.metadata.threemf import MAX_GEOMETRY_TRIANGLES

    triangles = min(MAX_GEOMETRY_TRIANGLES - 1000, max(1000, disk_bytes // 22))
    obj = _torus_object(1, triangles)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("_rels/.rels", MODEL_RELS)
        zf.writestr("3D/3dmodel.model", b'<?xml version="1.0" encoding="UTF-8"?>\n<model unit="millimeter" '
                    b'xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02"><resources>' + obj
                    + b'</resources><build><item objectid="1"/></build></model>')
    return path


def _zip_gcode(path: Path, disk_bytes: int, member: str, header: bytes, extra: dict[str, bytes]) -> Path:
    bodies = [_moves(seed) for seed in range(4)]
    with open(path, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, data in extra.items():
            zf.writestr(name, data)
        with zf.open(member, "w", force_zip64=True) as stream:
            _fill(stream, disk_bytes, raw, header,
                  lambda i: b";LAYER:%d\n" % i + bodies[i % len(bodies)], b";End of Gcode\n")
    return path


def make_plate_file(path: Path, disk_bytes: int) -> Path:
    header = (b"; HEADER_BLOCK_START\n; BambuStudio 02.05.00.66\n; model printing time: 5h 1m 2s; "
              b"total estimated time: 5h 9m 5s\n; total layer number: 1000\n; total filament length [mm] : "
              b"7854.52,2915.81\n; total filament weight [g] : 23.43,8.70\n; max_z_height: 200.00\n"
              b"; HEADER_BLOCK_END\n\n; CONFIG_BLOCK_START\n; layer_height = 0.2\n; nozzle_diameter = 0.4\n"
              b"; gcode_flavor = marlin\n; printer_model = Bambu Lab P1S\n; CONFIG_BLOCK_END\n")
    model = (b'<?xml version="1.0" encoding="UTF-8"?>\n<model unit="millimeter" '
             b'xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02">'
             b'<metadata name="Application">BambuStudio-02.05.00.66</metadata><resources></resources><build/></model>')
    extra = {"[Content_Types].xml": CONTENT_TYPES.encode(), "_rels/.rels": MODEL_RELS.encode(),
             "3D/3dmodel.model": model, "Metadata/plate_1.png": _png(512),
             "Metadata/slice_info.config": b'<?xml version="1.0"?><config><plate><metadata key="prediction" '
                                           b'value="18545"/></plate></config>'}
    return _zip_gcode(path, disk_bytes, "Metadata/plate_1.gcode", header, extra)


def make_ufp(path: Path, disk_bytes: int) -> Path:
    header = (b";FLAVOR:Griffin\n;TIME:18545\n;Filament used: 12.3m\n;Layer height: 0.2\n;MINX:1\n;MINY:2\n"
              b";MINZ:0.2\n;MAXX:200\n;MAXY:200\n;MAXZ:200\n;TARGET_MACHINE.NAME:Ultimaker S5\n"
              b";Generated with Cura_SteamEngine 5.9.1\n;LAYER_COUNT:1000\n")
    extra = {"/[Content_Types].xml": CONTENT_TYPES.encode(), "/_rels/.rels": UFP_RELS.encode(),
             "/Metadata/thumbnail.png": _png(300)}
    return _zip_gcode(path, disk_bytes, "/3D/model.gcode", header, extra)


KINDS = {
    "G-code": ("bench.gcode", make_gcode),
    "3MF project": ("bench.3mf", make_3mf_project),
    "3MF one mesh": ("bench_mesh.3mf", make_3mf_one_mesh),
    "3MF plate file": ("bench.gcode.3mf", make_plate_file),
    "UFP": ("bench.ufp", make_ufp),
}


def measure(path: Path) -> dict:
    """Extract ``path`` in a fresh process; its JSON report."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, env=env,
                          timeout=3600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"extraction of {path.name} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-mb", type=float, default=1.0, help="size of the small file of each kind (MB)")
    parser.add_argument("--large-gcode-mb", type=float, default=500.0, help="size of the large G-code (MB)")
    parser.add_argument("--large-mb", type=float, default=200.0, help="size of the large 3MF and UFP files (MB)")
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS))
    parser.add_argument("--tmp", help="folder for the synthesized files (default: a new temp dir)")
    args = parser.parse_args()
    print(f"{'kind':<16}{'file MB':>9}{'time s':>9}{'x 1 MB':>8}{'peak RSS MiB':>14}{'growth MiB':>12}  facts")
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for kind in args.kinds:
            name, make = KINDS[kind]
            large_mb = args.large_gcode_mb if kind == "G-code" else args.large_mb
            small_time = None
            for label, megabytes in (("small", args.small_mb), ("large", large_mb)):
                path = make(Path(tmp) / f"{label}_{name}", int(megabytes * 1_000_000))
                report = measure(path)
                ratio = "" if small_time is None else f"{report['seconds'] / small_time:.0f}x"
                small_time = report["seconds"] if small_time is None else small_time
                growth = (report["peak_kib"] - report["base_kib"]) / 1024
                facts = dict(report["facts"], thumbnail=report["thumbnail"])
                print(f"{kind:<16}{path.stat().st_size / 1e6:>9.1f}{report['seconds']:>9.2f}{ratio:>8}"
                      f"{report['peak_kib'] / 1024:>14.1f}{growth:>12.1f}  {json.dumps(facts)}", flush=True)
                path.unlink()


if __name__ == "__main__":
    main()
