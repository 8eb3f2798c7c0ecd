#!/usr/bin/env node
// The Teachable Machine fixtures' probabilities as TensorFlow.js itself computes them: the independent reference
// that tests/test_teachable_machine.py compares the Python import with (within 1e-4), so the test suite needs no
// Node. Writes tests/fixtures/teachable_machine_reference.json.
//
// Set up once, outside the repository (@tensorflow/tfjs is pure JavaScript: no native addon, CPU backend):
//
//     mkdir -p /tmp/tmref && cd /tmp/tmref && npm init -y && npm install --no-audit --no-fund @tensorflow/tfjs@4.22.0
//
// Then, from the repository root (after `make run` or `make test` made .venv):
//
//     node scripts/teachable_machine_reference.mjs [FIXTURES] [OUT]
//
// FIXTURES defaults to ../shared/fixtures/teachable-machine (image-model.zip, tiny-image-model.zip,
// image-model-data.zip), OUT to tests/fixtures/teachable_machine_reference.json; TFJS_DIR (default /tmp/tmref)
// is where @tensorflow/tfjs was installed, PYTHON (default .venv/bin/python) the project's Python.
//
// What each side does: Python's standard `zipfile` unpacks the zips, and the project's `load_pixels` decodes
// each picture, cuts its centre square and resizes it (Pillow, bilinear): resizing must be identical on both
// sides, and a browser's canvas cannot run here. Everything after that is TensorFlow.js: the model is loaded
// from its own model.json and weight shards by tf.loadLayersModel, and the pixels get Teachable Machine's own
// preprocessing (its @teachablemachine/image `cropTensor`: greyscale as 0.2989 R + 0.5870 G + 0.1140 B for a
// one-channel model; then x / 127.5 - 1, as its Keras snippet scales; its JavaScript library divides by 127).

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const FIXTURES = path.resolve(process.argv[2] ?? path.join(REPO, "..", "shared", "fixtures", "teachable-machine"));
const OUT = path.resolve(process.argv[3] ?? path.join(REPO, "tests", "fixtures", "teachable_machine_reference.json"));
const TFJS_DIR = process.env.TFJS_DIR ?? "/tmp/tmref";
const PYTHON = process.env.PYTHON ?? path.join(REPO, ".venv", "bin", "python");
const MODELS = ["image-model.zip", "tiny-image-model.zip"];
const PICTURES = "image-model-data.zip";
const GREY_WEIGHTS = [0.2989, 0.587, 0.114];

// The project's own decoding, crop and resize: uint8 RGB [N, size, size, 3] written raw to `out`; prints the
// pictures' names (relative to `folder`, sorted), macOS junk left out.
const PIXELS_PY = `
import json, sys
from pathlib import Path
import numpy as np
from simpsons_core.data.images import load_pixels
size, folder, out = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png") if "__MACOSX" not in p.parts)
np.stack([load_pixels(folder / name, size, "centre-crop") for name in names]).tofile(out)
print(json.dumps(names))
`;

const tf = createRequire(path.join(TFJS_DIR, "package.json"))("@tensorflow/tfjs");

function python(args) {
  return execFileSync(PYTHON, args, { cwd: REPO, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
}

function unzip(zip, into) {
  python(["-m", "zipfile", "-e", path.join(FIXTURES, zip), into]);
  return into;
}

function findFile(folder, name) {
  for (const entry of readdirSync(folder, { withFileTypes: true, recursive: true })) {
    const where = path.join(entry.parentPath ?? entry.path, entry.name);
    if (entry.isFile() && entry.name === name && !where.includes("__MACOSX")) return where;
  }
  throw new Error(`${name} not found under ${folder}`);
}

async function loadModel(folder) {
  const modelJson = findFile(folder, "model.json");
  const spec = JSON.parse(readFileSync(modelJson, "utf8"));
  const shards = spec.weightsManifest.flatMap((group) => group.paths);
  const bytes = Buffer.concat(shards.map((shard) => readFileSync(path.join(path.dirname(modelJson), shard))));
  const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const weightSpecs = spec.weightsManifest.flatMap((group) => group.weights);
  const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: spec.modelTopology, weightSpecs, weightData }));
  const metadata = JSON.parse(readFileSync(path.join(path.dirname(modelJson), "metadata.json"), "utf8"));
  return { model, labels: metadata.labels };
}

function probabilities(model, pixels, count) {
  const [, size, , channels] = model.inputs[0].shape;
  return tf.tidy(() => {
    let x = tf.tensor4d(Float32Array.from(pixels), [count, size, size, 3]);
    if (channels === 1) x = x.mul(tf.tensor1d(GREY_WEIGHTS)).sum(-1, true);
    return model.predict(x.div(127.5).sub(1)).arraySync();
  });
}

async function main() {
  await tf.setBackend("cpu");
  const scratch = mkdtempSync(path.join(tmpdir(), "tm-reference-"));
  try {
    const pictures = unzip(PICTURES, path.join(scratch, "pictures"));
    const result = {
      generated_by: "scripts/teachable_machine_reference.mjs",
      tfjs_version: tf.version.tfjs,
      backend: tf.getBackend(),
      preprocessing: "centre square resized by load_pixels (Pillow, bilinear); TM greyscale weights; x / 127.5 - 1",
      models: {},
    };
    for (const zip of MODELS) {
      const { model, labels } = await loadModel(unzip(zip, path.join(scratch, zip)));
      const size = model.inputs[0].shape[1];
      const raw = path.join(scratch, `${zip}.u8`);
      const names = JSON.parse(python(["-c", PIXELS_PY, String(size), pictures, raw]));
      const rows = probabilities(model, readFileSync(raw), names.length);
      result.models[zip] = {
        labels,
        input_shape: model.inputs[0].shape.slice(1),
        probabilities: Object.fromEntries(names.map((name, i) => [name, rows[i]])),
      };
      console.log(`${zip}: ${names.length} pictures, input ${model.inputs[0].shape.slice(1).join("x")}`);
    }
    writeFileSync(OUT, JSON.stringify(result, null, 2) + "\n");
    console.log(`wrote ${OUT}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
