"""The README's picture of "Your own character": the SMPL mannequin and an Unreal-named A-pose rig
with other proportions, keyed from the same dance and shown on the same frame (Cycles, on the CPU).

    python tools/make_character_picture.py              # -> docs/your-own-character.png

The dance is the shipped model's on the demo track (bench/retarget.py's cache, made if missing).
The character's body is one capsule per deforming bone, as the mannequin's is.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import retarget as bench  # noqa: E402  (first: it prepares a private Blender user folder, then imports bpy)
import bpy  # noqa: E402
import numpy as np  # noqa: E402


def capsule_body(rig, obj, radius: float = 0.045):
    """One capsule per bone of ``obj`` (fingers and twist bones left out), rigidly skinned to it, made
    as the mannequin's body is (``rig``: the extension's m2d_addon.rig)."""
    verts, faces, groups = [], [], {}
    for bone in obj.data.bones:
        if any(word in bone.name for word in ("twist", "index", "root")):
            continue
        a, b = np.array(bone.head_local), np.array(bone.tail_local)
        if np.linalg.norm(b - a) < 1e-4:
            continue
        v, f = rig._capsule(a, b, radius * (1.6 if "spine" in bone.name or bone.name == "pelvis" else 1.0))
        start = len(verts)
        verts.extend(v)
        faces.extend(tuple(i + start for i in face) for face in f)
        groups[bone.name] = [(1.0, list(range(start, start + len(v))))]
    mesh = bpy.data.meshes.new("Body")
    mesh.from_pydata([tuple(p) for p in verts], [], faces)
    for poly in mesh.polygons:
        poly.use_smooth = True
    return rig._link_body(bpy.context, obj, mesh, groups)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frame", type=int, default=244, help="the dance's frame to show")
    parser.add_argument("--output", default=str(REPO / "docs" / "your-own-character.png"))
    parser.add_argument("--samples", type=int, default=24)
    args = parser.parse_args(argv)

    import rigs

    from inference.dance import Dance

    npz = bench.dance(20.0, 0)
    bench.install()
    bridge, rig = bench.module("bridge"), bench.module("rig")
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    d = Dance.load(npz)
    frames = np.arange(1, d.num_frames + 1)

    dancer = rig.create_armature(bpy.context, (-0.65, 0.0, 0.0))
    rig.add_mannequin(bpy.context, dancer)
    rest, pelvis = bridge.bone_rest(dancer)
    keys = bridge.prepare_keys(npz, frames, d.audio_start + (frames - 1) / 30.0, rest, pelvis)
    bridge.assign_action(dancer, bridge.write_action(dancer, "Dance", keys.frames, keys.quats, keys.loc))

    h = rigs.build("UE5", pose="A", roll=1.0, leg=1.12, knee=1.12, arm=0.95, torso=0.9)
    h.location = (0.65, 0.0, 0.0)
    hero = rigs.create(h, name="Mannequin")
    capsule_body(rig, hero)
    bench.keys_for(hero, npz, 30.0)

    scene.frame_set(args.frame)
    bpy.ops.object.light_add(type="SUN", rotation=(0.7, 0.2, -0.5))
    bpy.context.active_object.data.energy = 3.5
    bpy.ops.mesh.primitive_plane_add(size=12)
    bpy.ops.object.camera_add(location=(0.0, -5.2, 1.25), rotation=(np.radians(88), 0.0, 0.0))
    scene.camera = bpy.context.active_object
    scene.camera.data.lens = 40
    world = bpy.data.worlds.new("World")
    world.color = (0.8, 0.82, 0.86)
    scene.world = world
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = args.samples
    scene.render.resolution_x, scene.render.resolution_y = 960, 540
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = args.output
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.render.render(write_still=True)
    from PIL import Image  # a few tens of kB in the repository instead of half a MB

    Image.open(args.output).convert("RGB").quantize(colors=48, dither=Image.Dither.NONE).save(args.output,
                                                                                              optimize=True)
    print(args.output)
    import addon_utils

    addon_utils.disable(bench.ADDON, default_set=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)
