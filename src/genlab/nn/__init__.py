"""Building blocks (no training logic): MLPs, embeddings, attention, GPT, recurrent cells, conv nets."""
