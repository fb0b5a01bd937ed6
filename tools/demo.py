"""The whole extension path, headless: music in, a dancing armature out (.blend, .fbx, preview GIF).

    python tools/demo.py                         # the bundled demo track, the shipped model
    python tools/demo.py --audio song.mp3 --out out/song --fps 24
    python tools/demo.py --random-weights        # try the pipeline before a trained model exists

It builds the extension zip with Blender's ``blender_ext.py``, installs it with
Blender's "Install from Disk" into a private Blender user folder (``cache/``, so
your own Blender is untouched), creates a scene with the music as a sound strip,
runs ``bpy.ops.m2d.generate()``, saves ``demo.blend`` (music packed in), exports
``demo.fbx`` and writes ``demo.gif``, a stick-figure preview read back from the
armature. Needs the packages of requirements-dev.txt (``bpy``, ``torch`` …).

Exit status: 0 done, 2 bad input (a one-line reason on stderr), 1 anything else.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ADDON = "bl_ext.user_default.music2dance"
EXIT_USER_ERROR = 2
DEMO_TRACK = REPO / "assets" / "demo_track.ogg"
PREVIEW_FPS = 15


class UserError(Exception):
    """Bad input: reported in one line, exit status 2."""


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python tools/demo.py", description=__doc__.split("\n")[0])
    parser.add_argument("--audio", default=str(DEMO_TRACK), help="music file (default: the bundled demo track)")
    parser.add_argument("--out", default=str(REPO / "out"), help="output folder (default out/)")
    parser.add_argument("--weights", default=None, help="model folder (default: weights/, the shipped model)")
    parser.add_argument("--random-weights", action="store_true",
                        help="use a tiny untrained network: checks the pipeline, the dance is noise")
    parser.add_argument("--fps", type=float, default=30.0, help="scene frame rate, e.g. 24, 25, 29.97 (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default 50)")
    parser.add_argument("--guidance", type=float, default=None, help="guidance weight (default 2)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="default auto")
    parser.add_argument("--fbx-preset", default="GENERIC", choices=("GENERIC", "UNITY", "UNREAL"),
                        help="FBX axes and scale (default GENERIC)")
    parser.add_argument("--blender-user", default=str(REPO / "cache" / "demo-blender-user"),
                        help="private Blender user folder the extension is installed into (default cache/)")
    return parser.parse_args(argv)


def check_inputs(args) -> Path:
    audio = Path(args.audio)
    if not audio.is_file():
        raise UserError(f"Audio file not found: {audio}.")
    if audio.stat().st_size == 0:
        raise UserError(f"{audio} is empty.")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"Cannot create the output folder {out} ({exc.strerror}).") from None
    if not os.access(out, os.W_OK):
        raise UserError(f"Cannot write into {out}.")
    if not (0 < args.fps <= 240):
        raise UserError(f"--fps must be between 0 and 240; got {args.fps}.")
    return out


def weights_folder(args) -> Path:
    if args.weights and args.random_weights:
        raise UserError("Give either --weights or --random-weights, not both.")
    if args.random_weights:
        import torch

        from inference.config import TINY_CONFIG
        from inference.network.model import DanceDenoiser
        from inference.network.weights import save_model

        torch.manual_seed(0)
        folder = Path(tempfile.mkdtemp(prefix="m2d-random-weights-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        return save_model(DanceDenoiser(TINY_CONFIG), folder)
    folder = Path(args.weights) if args.weights else REPO / "weights"
    from inference.config import CONFIG_FILE, WEIGHTS_FILE

    if not (folder / WEIGHTS_FILE).is_file() or not (folder / CONFIG_FILE).is_file():
        if args.weights:
            raise UserError(f"No model in {folder}: it needs {WEIGHTS_FILE} and {CONFIG_FILE}.")
        raise UserError(
            f"No trained model in {folder} yet ({WEIGHTS_FILE} + {CONFIG_FILE}). Put the released model there, "
            "or pass --weights FOLDER (a model trained with `python -m inference train`), or try the pipeline "
            "with --random-weights (an untrained network: the dance is noise)."
        )
    return folder


def setup_scene(bpy, args, audio: Path):
    scene = bpy.context.scene
    scene.name = "Music2Dance"
    fps = round(args.fps)
    scene.render.fps, scene.render.fps_base = fps, fps / args.fps
    strip = scene.sequence_editor_create().strips.new_sound("Music", str(audio.resolve()), channel=1,
                                                             frame_start=1)
    if strip.frame_final_end - strip.frame_final_start < 1:
        raise UserError(f"Blender cannot read {audio} as sound.")
    scene.frame_start, scene.frame_end = strip.frame_final_start, strip.frame_final_end - 1
    return scene, strip


def stage_scene(bpy, scene, dancer) -> None:
    """A floor, a light and a camera following the dancer, for whoever opens the .blend."""
    import math

    mesh = bpy.data.meshes.new("Floor")
    mesh.from_pydata([(-4, -4, 0), (4, -4, 0), (4, 4, 0), (-4, 4, 0)], [], [(0, 1, 2, 3)])
    scene.collection.objects.link(bpy.data.objects.new("Floor", mesh))
    sun = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    sun.rotation_euler = (math.radians(40), 0.0, math.radians(30))
    scene.collection.objects.link(sun)
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    camera.location = (3.2, -5.5, 1.7)
    camera.rotation_euler = (math.radians(84), 0.0, math.radians(30))
    scene.collection.objects.link(camera)
    scene.camera = camera
    follow = camera.constraints.new("TRACK_TO")
    follow.target, follow.subtarget = dancer, "spine2"
    follow.track_axis, follow.up_axis = "TRACK_NEGATIVE_Z", "UP_Y"


def render_still(bpy, scene, frame: int, path: Path):
    """A Workbench render of one frame; None (with a warning) where this machine cannot render."""
    saved = scene.frame_current
    scene.frame_set(frame)
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x = scene.render.resolution_y = 540
    scene.render.filepath = str(path.resolve())
    try:
        bpy.ops.render.render(write_still=True)
    except RuntimeError as exc:
        print(f"warning: no preview image, this machine cannot render ({exc}).", file=sys.stderr)
        return None
    finally:
        scene.frame_set(saved)
    return path


def install_extension(bpy, tmp: Path):
    from tools.build_extension import build

    zip_path = build(tmp)
    result = bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default",
                                                      enable_on_install=True, overwrite=True)
    if result != {"FINISHED"} or ADDON not in sys.modules:
        raise RuntimeError(f"Installing {zip_path} failed: {result}")


def run(args) -> int:
    out = check_inputs(args)
    audio = Path(args.audio)
    weights = weights_folder(args)
    os.environ["BLENDER_USER_RESOURCES"] = str(Path(args.blender_user).resolve())
    os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / "cache" / "numba"))
    try:
        import bpy
    except ImportError:
        raise UserError("The bpy module is missing: pip install -r requirements-dev.txt") from None
    import addon_utils

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="m2d-demo-") as tmp:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        install_extension(bpy, Path(tmp))
    try:
        prefs = bpy.context.preferences.addons[ADDON].preferences
        prefs.weights_path = str(weights.resolve())
        scene, strip = setup_scene(bpy, args, audio)
        settings = scene.m2d
        settings.seed, settings.device = args.seed, args.device
        if args.steps is not None:
            settings.steps = args.steps
        if args.guidance is not None:
            settings.guidance = args.guidance
        try:
            bpy.ops.m2d.generate()
        except RuntimeError as exc:  # the operator's report, or its poll message
            message = str(exc).strip().removeprefix("Error: ")
            raise UserError(message.split(".poll() ", 1)[-1]) from None
        dancer = bpy.data.objects["Dancer"]
        stage_scene(bpy, scene, dancer)
        strip.sound.pack()
        blend, fbx, gif = out / "demo.blend", out / "demo.fbx", out / "demo.gif"
        bpy.context.view_layer.objects.active = dancer
        bpy.ops.m2d.export_fbx(filepath=str(fbx.resolve()), preset=args.fbx_preset)
        bridge = sys.modules[f"{ADDON}.m2d_addon.bridge"]
        rate = scene.render.fps / scene.render.fps_base
        first, last = (int(v) for v in dancer.animation_data.action.frame_range)
        frames = sorted(set(round(f) for f in (first + i * rate / PREVIEW_FPS
                                               for i in range(int((last - first) * PREVIEW_FPS / rate) + 1))))
        from inference.preview import write_gif

        write_gif(bridge.read_joint_positions(dancer, frames), gif, PREVIEW_FPS)
        png = render_still(bpy, scene, (first + last) // 2, out / "demo.png")
        bpy.ops.wm.save_as_mainfile(filepath=str(blend.resolve()), check_existing=False, compress=True)
        action = dancer.animation_data.action
        print(f"Music2Dance demo: {action.name} on frames {first}-{last} at {rate:g} fps "
              f"in {time.monotonic() - started:.1f} s")
        for path in (blend, fbx, gif, png):
            if path is not None:
                print(f"  {path}")
    finally:
        addon_utils.disable(ADDON, default_set=False)  # unregister: a bpy process hangs at exit otherwise
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
