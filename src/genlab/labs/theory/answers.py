"""The theory questions and genlab's short answers: result first, then the reason, then the evidence's name.

Each entry: the registered output that shows it (figure or table stem), its topic, the question in one line
and the answer (a paragraph at most). The numbers themselves are in the figures and in the answers table's
check column, measured on every run, so no answer here quotes a number that a run could contradict.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    evidence: str  # the figure or table stem that shows it
    topic: str
    question: str
    answer: str


ANSWERS: tuple[Answer, ...] = (
    Answer(
        "seq2seq_ablations",
        "Transformers and sequence models",
        "What do positional encoding, Add&Norm and the feed-forward layer do; encoder vs decoder; why mask?",
        "Without positional encoding the toy transformer cannot reverse a sequence, without the causal mask "
        "its decoder scores near-perfectly in training yet fails when it generates, and without the residual "
        "path of Add&Norm a deeper stack does not train at all: figure seq2seq_ablations, table "
        "seq2seq_accuracy. Attention is a weighted average over a set, blind to order, so positions must be "
        "added to the inputs. The encoder reads the whole source with full self-attention; the decoder emits "
        "the target one token at a time, attending to its own past (masked self-attention) and to the encoder "
        "(cross-attention). In training the decoder is fed the true previous tokens (teacher forcing), so "
        "position t's input row t+1 holds the answer; the mask hides it, so training matches generation. "
        "Add&Norm (x + F(x), then LayerNorm) keeps an identity path for the signal and the gradient through "
        "every layer and each token's features at a fixed scale; the feed-forward layer is the per-token "
        "non-linear map that attention (a linear mix of values) lacks.",
    ),
    Answer(
        "attention_cost",
        "Transformers and sequence models",
        "How many multiplications does one attention layer cost, and what is each output?",
        "T^2 (D + M) multiplications for T tokens, D-wide queries and keys and M-wide values, exactly what "
        "torch's FLOP counter measures (figure attention_cost): Q K^T is T x D times D x T (T^2 D), and the "
        "weights times V is T x T times T x M (T^2 M). Output row i is y_i = sum_j softmax_j(q_i . k_j / "
        "sqrt(D)) v_j, a convex combination of the values, rebuilt by hand in the check.",
    ),
    Answer(
        "residual_init",
        "Transformers and sequence models",
        "How should a residual branch F be initialised, and why E[F(u) | u] = 0?",
        "With zero-mean weights and zero biases in the branch's last layer E[F(u) | u] = 0, and the stream's "
        "mean square then grows linearly with depth; a branch with a non-zero mean grows it quadratically "
        "(figure residual_init). x_L = x_0 + sum_l F_l: uncorrelated zero-mean terms add their variances "
        "(L terms), while terms sharing a mean m add coherently, (L m)^2. GPTs also shrink the last layer "
        "(std 0.02 / sqrt(2 n_layers)), so every block starts near the identity at any depth.",
    ),
    Answer(
        "bptt_formula",
        "Transformers and sequence models",
        "What is dl_T/dW[i, j] for h_t = phi(W h_{t-1} + U x_t) with a leaky-ReLU phi?",
        "dl_T/dW[i, j] = sum_t g_t[i] h_{t-1}[j] with g_t = D_t W^T D_{t+1} ... W^T D_T dl_T/dh_T and D_tau = "
        "diag(phi'(W h_{tau-1} + U x_tau)) (entries 1 or the leak slope); written out as matrix products "
        "it equals autograd's gradient to rounding, and dropping the D_tau breaks it (figure bptt_formula). "
        "W is used at every step, so the gradient sums one outer product per step, each carried back "
        "through T - t factors W^T D.",
    ),
    Answer(
        "bptt_cost",
        "Transformers and sequence models",
        "Why does BPTT's cost grow with the sequence length, and what does truncation save?",
        "Full BPTT keeps every step's activations for the backward pass, so its memory (and time) grows "
        "linearly with T; truncated BPTT back-propagates K steps at a time and holds K steps' worth, "
        "whatever T (figure bptt_cost). The price: no gradient reaches further back than K steps, so "
        "dependencies longer than K are not learned through the gradient.",
    ),
    Answer(
        "gradient_flow",
        "Transformers and sequence models",
        "Why do RNN gradients explode or vanish, and what do clipping and gates do?",
        "The gradient reaching h_t is multiplied by T - t Jacobians W^T D, so it grows or shrinks "
        "geometrically with the size of W times the activation's slopes (figure gradient_flow: W = 2 Q, Q "
        "orthogonal, explodes through a leaky ReLU; W = 0.8 Q vanishes). Clipping rescales a too-long "
        "gradient to a fixed norm and keeps its direction: it "
        "tames explosions but cannot bring back a vanished signal. GRU/LSTM gates add a path h_t = (1 - z) "
        "h_{t-1} + ... whose Jacobian is near the identity when z is small, so the signal can survive many "
        "steps; the sentiment lab trains both cells (its bptt figure shows them after training).",
    ),
    Answer(
        "architectures",
        "Transformers and sequence models",
        "Which architecture for speech recognition, question answering, sentiment, image classification, "
        "single-word translation?",
        "Many-to-many with attention for speech (audio frames to a shorter text), an encoder-decoder or "
        "encoder-only transformer for question answering, many-to-one (RNN or self-attention, then a "
        "classifier) for sentiment, a residual CNN for images, and a one-to-one lookup or one-to-many decoder "
        "for a single word's translation: table architectures, each row pointing at the genlab lab that "
        "runs that kind of model.",
    ),
    Answer(
        "jacobians",
        "Convolutions and images",
        "What are the Jacobians of Ax, x + b and the convolution x * f?",
        "A, the identity, and for the convolution a banded (Toeplitz) matrix: row i holds the kernel "
        "f_0..f_{K-1} starting at column i s - p, shifted by the stride s each row, with the taps on the "
        "padding dropped; in 2D a block-banded matrix of banded blocks (figure jacobians, every one equal to "
        "autograd's). diag(f) is the Jacobian of the elementwise product, not of the convolution.",
    ),
    Answer(
        "saliency",
        "Convolutions and images",
        "How can we measure how much each image region matters for a prediction?",
        "Occlude it and watch the class probability fall; or read the gradient of the class score with respect "
        "to each pixel (saliency), or Grad-CAM's map of a late convolution layer's channels weighted by their "
        "mean gradient. On the digit classifier, deleting the pixels each map ranks highest hurts the "
        "prediction far more than deleting random pixels, occlusion most (figure saliency): it measures the "
        "effect of removal directly, at the cost of one forward pass per patch position; the gradient is one "
        "backward pass but local and noisy; Grad-CAM is smooth but as coarse as its layer.",
    ),
    Answer(
        "attention_imitation",
        "Convolutions and images",
        "How can a BERT-like network imitate a convolution layer, and a fully connected layer?",
        "A convolution: one attention head per kernel offset, each attending by a learned relative-position "
        "bias to exactly one neighbour, and the output projection weighting the heads by the kernel: k^2 heads "
        "(9 for 3x3) imitate it almost exactly, one head cannot (figure attention_imitation). A head returns a "
        "positive, normalised average of the values, so signed kernel weights need the neighbours apart, one "
        "per head. A fully connected layer: a [CLS] query attends to every pixel and its result is read out; "
        "with BERT's additive embeddings (value x_j u + p_j) each head yields one positive average of the "
        "pixels, so a 10-output layer needs about 20 heads, while a pixel value that multiplies its position "
        "embedding (x_j p_j) gives every pixel its own signed weight and one head suffices.",
    ),
    Answer(
        "receptive_field",
        "Convolutions and images",
        "Output size and receptive field of conv3, conv3, maxpool2, conv3, conv5 on 128x128?",
        "117x117 with a 12x12 receptive field when the pool has stride 1, and 56x56 with 18x18 under "
        "PyTorch's default (stride = kernel = 2): table receptive_field, where real torch layers give the same "
        "sizes and the input pixels with a non-zero gradient span the same field. n_out = floor((n + 2p - "
        "k) / s) + 1 per layer, and r = 1 + sum_l (k_l - 1) prod_{i<l} s_i.",
    ),
)

GENERATIVE = (
    Answer(
        "diffusion_positions",
        "Generative models",
        "Why do image diffusion models need positional information in 2D?",
        "Because what belongs at a pixel depends on where the pixel is, and convolutions cannot tell: a "
        "denoiser with no position information generates blobs anywhere, while the same denoiser given each "
        "pixel's row and column puts them where the data has them (figure diffusion_positions). A convolution "
        "applies the same weights at every place, and the start noise is the same everywhere, so without a "
        "position signal the samples' distribution is shift-invariant. Zero padding leaks a little position near "
        "the border; U-Nets also downsample until the border is everywhere. Their attention layers flatten "
        "the image into a sequence, so an encoding of the flat index alone would call a pixel's right neighbour "
        "close and its lower neighbour W steps away: the position must be given as (row, column).",
    ),
    Answer(
        "gan_pairing",
        "Generative models",
        "A GAN, a CycleGAN and a conditional GAN map domain A to B: which can learn the pairing, from what data?",
        "Only the conditional GAN trained on pairs learns which b belongs to which a; without pairs no model "
        "can (figure gan_pairing, table gan_pairing). A plain GAN's discriminator sees b alone, so any map "
        "that carries A's distribution onto B's wins, pairing or not. A CycleGAN adds that the map be "
        "invertible (the cycle losses), which rules out collapse, not the many invertible maps between two "
        "symmetric domains: it reaches B's distribution but picks its own partners. A conditional "
        "GAN's discriminator judges pairs (a, b): on true pairs it sees the joint distribution and only the "
        "true map fools it; on unpaired data (a and b independent) the joint it must imitate ignores a, so it "
        "learns no pairing either.",
    ),
)

ARCHITECTURES = (
    {
        "problem": "speech recognition",
        "input -> output": "audio frames -> a shorter text",
        "architecture": "many-to-many, encoder-decoder with attention (or CTC)",
        "in genlab": "- (the textgen lab's attention, over text)",
    },
    {
        "problem": "question answering",
        "input -> output": "question + passage -> answer span or text",
        "architecture": "many-to-many transformer (encoder, or encoder-decoder)",
        "in genlab": "textgen (a GPT)",
    },
    {
        "problem": "sentiment analysis",
        "input -> output": "review -> positive / negative",
        "architecture": "many-to-one: RNN/GRU or self-attention, then a classifier",
        "in genlab": "sentiment (Elman, GRU, MLP + restricted attention)",
    },
    {
        "problem": "image classification",
        "input -> output": "image -> class",
        "architecture": "a CNN with residual connections",
        "in genlab": "latent (the judge CNN)",
    },
    {
        "problem": "single-word translation",
        "input -> output": "one word -> one word (or its letters)",
        "architecture": "one-to-one (an embedding lookup) or one-to-many (a decoder spelling it)",
        "in genlab": "theory (the toy seq2seq decoder)",
    },
)

TEXT_TO_IMAGE = Answer(
    "imagediff: attention",
    "Generative models",
    "How does a text-to-image model attend to the prompt: which of the four query/key quadrants does it need?",
    "The image asks and the prompt answers: queries come from the image features, keys and values from the "
    "text encoder's token embeddings (cross-attention), so each region mixes in the words that concern it. "
    "Over the joint sequence [image tokens; text tokens] the attention matrix has four quadrants: image to "
    "image (self-attention, which spreads layout across the picture), image to text (the conditioning "
    "itself), and text to image or text to text, needed only when the text stream is updated too (joint "
    "blocks as in SD3); a U-Net reading a frozen text encoder uses the first two. The image lab's attention "
    "figure (imagediff, figure attention: each prompt token's weight over the bottleneck's pixels) is the "
    "evidence; its composition experiment, where it exists, shows what the image-to-text quadrant does.",
)
