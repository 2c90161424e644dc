"""Independent float64 numpy forward pass of BERT, used as a conversion oracle.

Written directly from the Hugging Face `BertModel` semantics (post-LayerNorm
Transformer, additive attention mask, tanh pooler over [CLS]) and reading the
raw HF tensors by their HF names, so it shares no code with
`mrpc_task.checkpoint_conversion`. TF1 google-research/bert tensors are fed to
it after a separate, explicit renaming (`tf1_to_hf_tensors`).
"""

import math
from typing import Dict, Mapping, Tuple

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu_exact(x: np.ndarray) -> np.ndarray:
  """GELU with the exact Gaussian CDF (HF 'gelu')."""
  return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def gelu_tanh(x: np.ndarray) -> np.ndarray:
  """Tanh-approximate GELU (google-research/bert `gelu`, HF 'gelu_new')."""
  return 0.5 * x * (1.0 + np.tanh(
      math.sqrt(2.0 / math.pi) * (x + 0.044715 * np.power(x, 3))))


ACTIVATIONS = {'gelu_exact': gelu_exact, 'gelu_tanh': gelu_tanh}


def _layer_norm(x, gamma, beta, eps):
  mean = x.mean(axis=-1, keepdims=True)
  var = ((x - mean)**2).mean(axis=-1, keepdims=True)
  return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _linear(x, t, prefix):
  """torch.nn.Linear: weight is [out, in]."""
  return x @ t[prefix + '.weight'].T + t[prefix + '.bias']


def bert_forward(
    tensors: Mapping[str, np.ndarray],
    num_layers: int,
    num_heads: int,
    input_word_ids: np.ndarray,
    input_mask: np.ndarray,
    input_type_ids: np.ndarray,
    activation: str = 'gelu_exact',
    layer_norm_eps: float = 1e-12) -> Tuple[np.ndarray, np.ndarray]:
  """Runs BERT on a batch from raw HF tensors.

  Args:
    tensors: HF tensor name -> array, with or without the `bert.` prefix.
    num_layers: Number of Transformer layers.
    num_heads: Number of attention heads.
    input_word_ids: int [batch, seq] token ids.
    input_mask: int [batch, seq], 1 for real tokens and 0 for padding.
    input_type_ids: int [batch, seq] segment ids.
    activation: 'gelu_exact' or 'gelu_tanh'.
    layer_norm_eps: LayerNorm epsilon.

  Returns:
    (sequence_output [batch, seq, hidden], pooled_output [batch, hidden]), both
    float64.
  """
  t = {(k[len('bert.'):] if k.startswith('bert.') else k):
       np.asarray(v, np.float64) for k, v in tensors.items()
       if not np.issubdtype(np.asarray(v).dtype, np.integer)}
  act = ACTIVATIONS[activation]
  batch, seq = input_word_ids.shape

  x = (t['embeddings.word_embeddings.weight'][input_word_ids] +
       t['embeddings.position_embeddings.weight'][np.arange(seq)][None] +
       t['embeddings.token_type_embeddings.weight'][input_type_ids])
  x = _layer_norm(x, t['embeddings.LayerNorm.weight'],
                  t['embeddings.LayerNorm.bias'], layer_norm_eps)
  hidden = x.shape[-1]
  head = hidden // num_heads
  # HF: extended mask (1 - mask) * finfo.min added to the scores.
  padding = 1.0 - input_mask[:, None, None, :].astype(np.float64)
  additive_mask = padding * -1e30

  def split_heads(y):
    return y.reshape(batch, seq, num_heads, head).transpose(0, 2, 1, 3)

  for i in range(num_layers):
    p = f'encoder.layer.{i}.'
    q = split_heads(_linear(x, t, p + 'attention.self.query'))
    k = split_heads(_linear(x, t, p + 'attention.self.key'))
    v = split_heads(_linear(x, t, p + 'attention.self.value'))
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head) + additive_mask
    scores -= scores.max(axis=-1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=-1, keepdims=True)
    context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
    attention = _linear(context, t, p + 'attention.output.dense')
    x = _layer_norm(attention + x, t[p + 'attention.output.LayerNorm.weight'],
                    t[p + 'attention.output.LayerNorm.bias'], layer_norm_eps)
    inner = act(_linear(x, t, p + 'intermediate.dense'))
    out = _linear(inner, t, p + 'output.dense')
    x = _layer_norm(out + x, t[p + 'output.LayerNorm.weight'],
                    t[p + 'output.LayerNorm.bias'], layer_norm_eps)

  pooled = np.tanh(_linear(x[:, 0], t, 'pooler.dense'))
  return x, pooled


def tf1_to_hf_tensors(tf1: Mapping[str, np.ndarray],
                      num_layers: int) -> Dict[str, np.ndarray]:
  """Renames google-research/bert TF1 variables to HF names for `bert_forward`.

  Kernels ([in, out] in TF1) are transposed to HF's [out, in]; `cls/*` and
  other non-encoder variables are dropped.

  Args:
    tf1: TF1 variable name (e.g.
      `bert/encoder/layer_0/attention/self/query/kernel`) -> array.
    num_layers: Number of Transformer layers.

  Returns:
    HF tensor name -> array.
  """
  hf = {
      'embeddings.word_embeddings.weight':
          tf1['bert/embeddings/word_embeddings'],
      'embeddings.position_embeddings.weight':
          tf1['bert/embeddings/position_embeddings'],
      'embeddings.token_type_embeddings.weight':
          tf1['bert/embeddings/token_type_embeddings'],
      'embeddings.LayerNorm.weight': tf1['bert/embeddings/LayerNorm/gamma'],
      'embeddings.LayerNorm.bias': tf1['bert/embeddings/LayerNorm/beta'],
      'pooler.dense.weight': tf1['bert/pooler/dense/kernel'].T,
      'pooler.dense.bias': tf1['bert/pooler/dense/bias'],
  }
  dense = {
      'attention.self.query': 'attention/self/query',
      'attention.self.key': 'attention/self/key',
      'attention.self.value': 'attention/self/value',
      'attention.output.dense': 'attention/output/dense',
      'intermediate.dense': 'intermediate/dense',
      'output.dense': 'output/dense',
  }
  norms = {
      'attention.output.LayerNorm': 'attention/output/LayerNorm',
      'output.LayerNorm': 'output/LayerNorm',
  }
  for i in range(num_layers):
    hp, tp = f'encoder.layer.{i}.', f'bert/encoder/layer_{i}/'
    for hf_name, tf1_name in dense.items():
      hf[hp + hf_name + '.weight'] = tf1[tp + tf1_name + '/kernel'].T
      hf[hp + hf_name + '.bias'] = tf1[tp + tf1_name + '/bias']
    for hf_name, tf1_name in norms.items():
      hf[hp + hf_name + '.weight'] = tf1[tp + tf1_name + '/gamma']
      hf[hp + hf_name + '.bias'] = tf1[tp + tf1_name + '/beta']
  return hf
