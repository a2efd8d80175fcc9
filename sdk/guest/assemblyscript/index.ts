// The wasmgrid AssemblyScript guest SDK: register map, flat_map, filter and
// reduce functions; the SDK runs them over batches of records as guest ABI
// v1 (docs/abi.md) describes. See README.md.

export {
  ABI_VERSION,
  Emitter,
  Record,
  MapFn,
  FlatMapFn,
  FlatMapPairsFn,
  FilterFn,
  ReduceFn,
  map,
  flatMap,
  flatMapPairs,
  filter,
  reduce,
  fail,
  failing,
} from "./core";
export { Bytes, equal, text, utf8 } from "./bytes";
