// A consumer of a dfdetect model in another runtime: everything it needs comes from the ONNX file.
//
//   node tests/js/consume.mjs MODEL.onnx CROP.png [CROP.png ...]
//
// Reads the model contract from the file's metadata_props, turns each face crop (an RGB PNG at the
// contract's input size) into the normalised NCHW float32 tensor the contract describes, runs the
// model with onnxruntime-node and prints JSON: the contract, and per crop the raw logit, the
// graph's `probability` output and the scanner's probability sigmoid(logit / temperature + logit_bias)
// (a contract written before logit_bias existed has none: 0) with its
// decision at the contract's default threshold.
import { readFileSync } from "node:fs";
import { PNG } from "pngjs";
import ort from "onnxruntime-node";

const CONTRACT_KEY = "dfdetect.contract";
const CONTRACT_SCHEMA = "dfdetect.contract/v1";
const MODEL_METADATA_PROPS = 14; // ModelProto.metadata_props in onnx.proto
const WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5;

// onnxruntime-node exposes no custom metadata, so the ModelProto is walked directly: only its
// top-level fields are visited, and only the metadata entries (key = 1, value = 2) are decoded.
function readVarint(bytes, offset) {
  let value = 0n, shift = 0n, position = offset;
  for (;;) {
    const byte = bytes[position++];
    value |= BigInt(byte & 0x7f) << shift;
    if (byte < 0x80) return [value, position];
    shift += 7n;
  }
}

function* protoFields(bytes, start = 0, end = bytes.length) {
  let offset = start;
  while (offset < end) {
    const [tag, afterTag] = readVarint(bytes, offset);
    const field = Number(tag >> 3n), wire = Number(tag & 7n);
    if (wire === WIRE_VARINT) {
      offset = readVarint(bytes, afterTag)[1];
    } else if (wire === WIRE_I64) {
      offset = afterTag + 8;
    } else if (wire === WIRE_I32) {
      offset = afterTag + 4;
    } else if (wire === WIRE_LEN) {
      const [length, afterLength] = readVarint(bytes, afterTag);
      offset = afterLength + Number(length);
      yield { field, start: afterLength, end: offset };
    } else {
      throw new Error(`unsupported protobuf wire type ${wire} at byte ${offset}`);
    }
  }
}

function readMetadata(bytes) {
  const decoder = new TextDecoder();
  const metadata = {};
  for (const entry of protoFields(bytes)) {
    if (entry.field !== MODEL_METADATA_PROPS) continue;
    const strings = {};
    for (const part of protoFields(bytes, entry.start, entry.end)) {
      strings[part.field] = decoder.decode(bytes.subarray(part.start, part.end));
    }
    metadata[strings[1]] = strings[2] ?? "";
  }
  return metadata;
}

function toTensor(crops, preprocessing) {
  const size = preprocessing.input_size;
  const plane = size * size;
  const data = new Float32Array(crops.length * 3 * plane);
  if (preprocessing.color_order !== "RGB") throw new Error(`unexpected colour order ${preprocessing.color_order}`);
  crops.forEach((png, n) => {
    if (png.width !== size || png.height !== size) {
      throw new Error(`crop is ${png.width}x${png.height}, the model takes ${size}x${size}`);
    }
    for (let pixel = 0; pixel < plane; pixel++) {
      for (let c = 0; c < 3; c++) {
        const value = Math.fround(png.data[pixel * 4 + c] / 255); // pngjs gives RGBA
        data[(n * 3 + c) * plane + pixel] = (value - preprocessing.mean[c]) / preprocessing.std[c];
      }
    }
  });
  return new ort.Tensor("float32", data, [crops.length, 3, size, size]);
}

const sigmoid = (x) => 1 / (1 + Math.exp(-x));

async function main() {
  const [modelPath, ...cropPaths] = process.argv.slice(2);
  if (!modelPath || cropPaths.length === 0) throw new Error("usage: consume.mjs MODEL.onnx CROP.png [...]");
  const bytes = new Uint8Array(readFileSync(modelPath));
  const metadata = readMetadata(bytes);
  if (!(CONTRACT_KEY in metadata)) throw new Error(`${modelPath} has no ${CONTRACT_KEY} metadata`);
  const contract = JSON.parse(metadata[CONTRACT_KEY]);
  if (contract.schema !== CONTRACT_SCHEMA) throw new Error(`unsupported contract schema ${contract.schema}`);

  const crops = cropPaths.map((path) => PNG.sync.read(readFileSync(path)));
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["cpu"] });
  const outputs = await session.run({ images: toTensor(crops, contract.preprocessing) });
  const thresholdName = contract.default_threshold;
  const threshold = contract.thresholds[thresholdName];
  const results = cropPaths.map((path, n) => {
    const logit = outputs.logits.data[n];
    const probability = sigmoid(logit / contract.temperature + (contract.logit_bias ?? 0));
    return { path, logit, graph_probability: outputs.probability.data[n], probability,
             decision: probability >= threshold };
  });
  console.log(JSON.stringify({ contract, threshold_name: thresholdName, threshold,
                               inputs: session.inputNames, outputs: session.outputNames, results }));
}

main().catch((error) => {
  console.error(`consume.mjs: ${error.message}`);
  process.exit(1);
});
