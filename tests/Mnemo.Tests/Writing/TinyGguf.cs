using System.Text;

namespace Mnemo.Tests.Writing;

/// <summary>
/// Writes a tiny llama-architecture GGUF (format v3, little endian, 32-byte alignment, F32 tensors) with random weights,
/// so llama.cpp can be run in tests without a downloaded model: 1 block, width 32, 4 heads, a SentencePiece vocabulary of
/// &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;, the 256 byte tokens and a few word pieces (about 117 kB). Layout (the GGUF
/// specification in the ggml repository): header (magic "GGUF", version, tensor count, key count), the key-value
/// metadata, the tensor infos (name, dims fastest first, type, offset into the data section), padding to the alignment,
/// then each tensor at its aligned offset.
/// </summary>
static class TinyGguf
{
    const int Width = 32, Heads = 4, FeedForward = 64, Context = 512;

    enum ValueType : uint { UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7, String = 8, Array = 9 }

    public static void Write(string path, int seed = 1234)
    {
        // The vocabulary: llama.cpp's token types 2 (unknown), 3 (control), 6 (byte) and 1 (normal).
        string[] words = ["\u2581", "\u2581a", "\u2581the", "\u2581Once", "\u2581upon", "\u2581time"];
        var tokens = new List<string> { "<unk>", "<s>", "</s>" };
        var types = new List<int> { 2, 3, 3 };
        for (int b = 0; b < 256; b++)
        {
            tokens.Add($"<0x{b:X2}>");
            types.Add(6);
        }
        tokens.AddRange(words);
        types.AddRange(words.Select(_ => 1));
        int vocab = tokens.Count;

        var meta = new List<(string Key, ValueType Type, object Value)>
        {
            ("general.alignment", ValueType.UInt32, 32u),
            ("general.architecture", ValueType.String, "llama"),
            ("general.name", ValueType.String, "tiny-random-llama"),
            ("llama.context_length", ValueType.UInt32, (uint)Context),
            ("llama.embedding_length", ValueType.UInt32, (uint)Width),
            ("llama.block_count", ValueType.UInt32, 1u),
            ("llama.feed_forward_length", ValueType.UInt32, (uint)FeedForward),
            ("llama.attention.head_count", ValueType.UInt32, (uint)Heads),
            ("llama.attention.head_count_kv", ValueType.UInt32, (uint)Heads),
            ("llama.attention.layer_norm_rms_epsilon", ValueType.Float32, 1e-5f),
            ("llama.rope.dimension_count", ValueType.UInt32, (uint)(Width / Heads)),
            ("llama.vocab_size", ValueType.UInt32, (uint)vocab),
            ("tokenizer.ggml.model", ValueType.String, "llama"),
            ("tokenizer.ggml.tokens", ValueType.Array, tokens),
            ("tokenizer.ggml.scores", ValueType.Array, new float[vocab]),
            ("tokenizer.ggml.token_type", ValueType.Array, types),
            ("tokenizer.ggml.unknown_token_id", ValueType.UInt32, 0u),
            ("tokenizer.ggml.bos_token_id", ValueType.UInt32, 1u),
            ("tokenizer.ggml.eos_token_id", ValueType.UInt32, 2u),
            ("tokenizer.ggml.add_bos_token", ValueType.Bool, true),
        };

        var random = new Random(seed);
        float[] Normal(int n)                                                           // N(0, 0.02²) by Box–Muller
        {
            var a = new float[n];
            for (int i = 0; i < n; i++)
                a[i] = (float)(0.02 * Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
            return a;
        }
        float[] Ones(int n) => Enumerable.Repeat(1f, n).ToArray();
        var tensors = new List<(string Name, int[] Dims, float[] Data)>                // dims fastest first: [in, out]
        {
            ("token_embd.weight", [Width, vocab], Normal(Width * vocab)),
            ("blk.0.attn_norm.weight", [Width], Ones(Width)),
            ("blk.0.attn_q.weight", [Width, Width], Normal(Width * Width)),
            ("blk.0.attn_k.weight", [Width, Width], Normal(Width * Width)),
            ("blk.0.attn_v.weight", [Width, Width], Normal(Width * Width)),
            ("blk.0.attn_output.weight", [Width, Width], Normal(Width * Width)),
            ("blk.0.ffn_norm.weight", [Width], Ones(Width)),
            ("blk.0.ffn_gate.weight", [Width, FeedForward], Normal(Width * FeedForward)),
            ("blk.0.ffn_up.weight", [Width, FeedForward], Normal(Width * FeedForward)),
            ("blk.0.ffn_down.weight", [FeedForward, Width], Normal(FeedForward * Width)),
            ("output_norm.weight", [Width], Ones(Width)),
            ("output.weight", [Width, vocab], Normal(Width * vocab)),
        };

        using var stream = File.Create(path);
        using var w = new BinaryWriter(stream, Encoding.UTF8);
        w.Write(Encoding.ASCII.GetBytes("GGUF"));
        w.Write(3u);
        w.Write((ulong)tensors.Count);
        w.Write((ulong)meta.Count);
        foreach (var (key, type, value) in meta)
        {
            Text(w, key);
            w.Write((uint)type);
            Value(w, type, value);
        }
        ulong offset = 0;
        foreach (var (name, dims, data) in tensors)
        {
            Text(w, name);
            w.Write((uint)dims.Length);
            foreach (int d in dims) w.Write((ulong)d);
            w.Write(0u);                                                               // GGML_TYPE_F32
            w.Write(offset);
            offset = Aligned(offset + (ulong)data.Length * 4);
        }
        w.Flush();
        Pad(w, Aligned((ulong)stream.Position));
        long start = stream.Position;
        foreach (var (_, _, data) in tensors)
        {
            foreach (float f in data) w.Write(f);
            w.Flush();
            Pad(w, (ulong)start + Aligned((ulong)(stream.Position - start)));
        }
    }

    static ulong Aligned(ulong x) => (x + 31) / 32 * 32;

    static void Pad(BinaryWriter w, ulong position)
    {
        while ((ulong)w.BaseStream.Position < position) w.Write((byte)0);
    }

    static void Text(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    static void Value(BinaryWriter w, ValueType type, object value)
    {
        switch (value)
        {
            case uint u: w.Write(u); break;
            case float f: w.Write(f); break;
            case bool b: w.Write(b ? (byte)1 : (byte)0); break;
            case string s: Text(w, s); break;
            case List<string> list:
                w.Write((uint)ValueType.String);
                w.Write((ulong)list.Count);
                foreach (var s in list) Text(w, s);
                break;
            case float[] floats:
                w.Write((uint)ValueType.Float32);
                w.Write((ulong)floats.Length);
                foreach (float f in floats) w.Write(f);
                break;
            case List<int> ints:
                w.Write((uint)ValueType.Int32);
                w.Write((ulong)ints.Count);
                foreach (int i in ints) w.Write(i);
                break;
            default: throw new NotSupportedException($"{type}: {value.GetType()}");
        }
    }
}
