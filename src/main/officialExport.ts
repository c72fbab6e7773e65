// The official-layout side of an export (`sdtt export --format official`, the app's Export panel): the tensors under
// the HF MDLM names (engine/io/officialLayout.ts), a config.json like kuleshov-group/mdlm-owt's, and the card's
// section on loading it with the official code. Pure Node: the layout maths has no tfjs or onnxruntime in it.
import type { ModelConfig } from '../shared/config.ts';
import { ApiError } from '../shared/api.ts';
import type { SafetensorInput } from '../runs/safetensors.ts';
import type { Tokenizer } from '../engine/data/tokenizer.ts';
import { EXPORTED_TOKENIZER_KEY } from '../engine/io/officialImport.ts';
import {
  DEFAULT_COND_DIM,
  officialDimsOf,
  officialExportProblem,
  officialHfConfig,
  officialTensorsOf,
} from '../engine/io/officialLayout.ts';

export interface OfficialExport {
  tensors: Map<string, SafetensorInput>;
  config: Record<string, unknown>;
}

/**
 * Tensors and config.json of the official layout. `extra` is the checkpoint's config.json extras (an imported model
 * keeps its cond_dim there); `provenance` goes under `sdtt_export`. A tokenizer other than GPT-2's is kept under
 * `sdtt_tokenizer` so the workbench re-imports the export with it (the official code itself assumes GPT-2).
 */
export function officialExport(
  cfg: ModelConfig,
  params: Float32Array,
  tokenizer: Tokenizer,
  extra: Record<string, unknown>,
  provenance: Record<string, unknown>,
): OfficialExport {
  const problem = officialExportProblem(cfg);
  if (problem) throw new ApiError(`cannot export in the official layout: ${problem}`, 'conflict');
  const imported = (extra.import ?? {}) as { condDim?: unknown };
  const condDim = typeof imported.condDim === 'number' ? imported.condDim : DEFAULT_COND_DIM;
  const config: Record<string, unknown> = {
    ...officialHfConfig(officialDimsOf(cfg, condDim)),
    ...(tokenizer.kind === 'gpt2' ? {} : { [EXPORTED_TOKENIZER_KEY]: tokenizer.toJSON() }),
    sdtt_export: { ...provenance, ...(extra.sdtt ? { sdtt: extra.sdtt } : {}) },
  };
  return { tensors: officialTensorsOf(cfg, params, condDim), config };
}

/** The model card's section for an official-layout export: how the official code loads it, and the tokenizer. */
export function officialCardSection(tokenizer: Tokenizer): string {
  const tok =
    tokenizer.kind === 'gpt2'
      ? 'The vocabulary is GPT-2\'s (50257 ids) + MASK (50257), as the official code assumes: `AutoTokenizer.from_pretrained("gpt2")` decodes samples.'
      : `**Tokenizer note:** this model uses the workbench's ${tokenizer.kind} tokenizer (${tokenizer.vocabSize} ids, EOS ${tokenizer.eosId}, MASK ${tokenizer.maskId}), not GPT-2's, which the official code assumes. Its mapping is in config.json (\`${EXPORTED_TOKENIZER_KEY}\`); decode samples with SDTT Workbench (\`sdtt sample --model <this folder>\`), or map ids through that table before using a GPT-2 tokenizer.`;
  return `
## Official layout

Written in the layout of the official MDLM code (kuleshov-group/mdlm \`models/dit.py\`, its Hugging Face wrapper
kuleshov-group/mdlm-owt, and jdeschena/sdtt): tensor names \`backbone.*\`, float32, \`time_conditioning: false\`.
The workbench's constant adaLN modulation is stored as \`adaLN_modulation.bias\` with \`adaLN_modulation.weight = 0\`
and \`sigma_map\` zero, so the official forward computes exactly this model at any noise level.

\`\`\`python
# Hugging Face (the model code comes from the kuleshov-group/mdlm-owt repository, named in config.json's auto_map)
from transformers import AutoModelForMaskedLM
model = AutoModelForMaskedLM.from_pretrained("<this folder>", trust_remote_code=True)

# The official DIT (kuleshov-group/mdlm models/dit.py), strict loading
from safetensors.torch import load_file
state = {k.removeprefix("backbone."): v for k, v in load_file("<this folder>/model.safetensors").items()}
dit.load_state_dict(state, strict=True)
\`\`\`

${tok}
`;
}
