namespace Mnemo.Memory.Sparse;

/// <summary>
/// The shape and the code-selection constants of a <see cref="SparseyMac"/> (docs/sparsey.md#the-code-selection-algorithm).
/// The papers' own constants were not reachable; these follow the published reimplementations and are Mnemo's choice.
/// </summary>
public sealed record SparseyConfig
{
    /// <summary>Bits of an input item.</summary>
    public int Inputs { get; init; } = 128;
    /// <summary>Q, competitive modules: a code is one winner in each.</summary>
    public int Modules { get; init; } = 24;
    /// <summary>K, cells per module.</summary>
    public int Cells { get; init; } = 28;
    /// <summary>G⁻: familiarity at or below which every cell of a module is equally likely (a new, random code).</summary>
    public double FamiliarityFloor { get; init; } = 0.1;
    /// <summary>γ: the power of the rescaled familiarity in the expansion η.</summary>
    public double Gamma { get; init; } = 2;
    /// <summary>χ: η = 1 + χ·K·g^γ, so a fully familiar input (g = 1) favours its best cells by about χ·K to 1.</summary>
    public double Chi { get; init; } = 100;
    /// <summary>λ, θ: slope and midpoint of the sigmoid that maps a cell's input V to its weight.</summary>
    public double Slope { get; init; } = 28;
    public double Midpoint { get; init; } = 0.5;

    /// <summary>Binary weights: bottom-up N·QK and horizontal (QK)².</summary>
    public long Bits => (long)Inputs * Modules * Cells + (long)Modules * Cells * Modules * Cells;

    public void Validate()
    {
        if (Inputs < 1 || Modules < 1 || Cells < 2)
            throw new ArgumentException($"a mac needs inputs ≥ 1, modules ≥ 1 and cells ≥ 2 per module; got {Inputs}, {Modules}, " +
                $"{Cells}");
        if (FamiliarityFloor is < 0 or >= 1)
            throw new ArgumentException($"the familiarity floor must be in [0, 1), got {FamiliarityFloor}");
    }
}

/// <summary>
/// One Sparsey macrocolumn (Rinkus 2010, Frontiers in Neuroanatomy 4:17; Rinkus 2014, Frontiers in Computational
/// Neuroscience 8:160; docs/sparsey.md): Q competitive modules of K binary cells; an item (a set of active input bits) is
/// stored as a sparse distributed code of Q cells, one per module. Weights are binary and set in a single trial: bottom-up
/// from each active input bit to each code cell, horizontal from each cell of the previous code to each cell of the next,
/// so a sequence is a chain of codes. The Code Selection Algorithm makes the code of a familiar item (in its temporal
/// context) the code stored for it, and the code of a novel one random, with the randomness set by the mac's familiarity
/// G with the input:
/// <code>
/// U_i = u_i / |x|           the fraction of the active inputs that reach cell i
/// H_i = h_i / Q             the fraction of the previous code that reaches cell i (no previous code: H_i = 1)
/// V_i = U_i · H_i           (replay without input: V_i = H_i)
/// G   = mean over modules of max_i V_i
/// η   = 1 + χ K g^γ,        g = max(0, (G − G⁻) / (1 − G⁻))
/// μ_i = 1 + (η − 1) σ(λ (V_i − θ)),   ρ_i = μ_i / Σ_{j in i's module} μ_j
/// </code>
/// Learning draws each module's winner from ρ; recall takes each module's largest V (the first on ties).
/// </summary>
public sealed class SparseyMac
{
    readonly SparseyConfig _c;
    readonly int _width;                                                                // Q·K cells
    readonly byte[] _up;                                                               // [input bit · width + cell]
    readonly byte[] _across;                                                           // [previous cell · width + cell]

    public SparseyMac(SparseyConfig c)
    {
        c.Validate();
        _c = c;
        _width = c.Modules * c.Cells;
        _up = new byte[(long)c.Inputs * _width];
        _across = new byte[(long)_width * _width];
    }

    public SparseyConfig Config => _c;

    /// <summary>The share of the bottom-up and of the horizontal weights that are set.</summary>
    public (double Up, double Across) Saturation =>
        (_up.Count(w => w != 0) / (double)_up.Length, _across.Count(w => w != 0) / (double)_across.Length);

    /// <summary>The familiarity G of the last code chosen.</summary>
    public double Familiarity { get; private set; }

    /// <summary>Stores a sequence of items (each its active input bits) in one trial; returns the codes chosen.</summary>
    public int[][] Learn(IReadOnlyList<int[]> items, Random rng)
    {
        var codes = new int[items.Count][];
        int[]? previous = null;
        for (int t = 0; t < items.Count; t++)
        {
            var code = codes[t] = Code(items[t], previous, rng);
            foreach (int bit in items[t])
                foreach (int cell in code) _up[(long)bit * _width + cell] = 1;
            if (previous is not null)
                foreach (int from in previous)
                    foreach (int cell in code) _across[(long)from * _width + cell] = 1;
            previous = code;
        }
        return codes;
    }

    /// <summary>
    /// Replays a stored sequence from its first item: the cue's code from its input alone, then each next code from the
    /// horizontal weights alone (no input), each decoded to the <paramref name="active"/> input bits its cells reach most.
    /// Returns the <paramref name="length"/> − 1 items after the cue.
    /// </summary>
    public int[][] Replay(int[] cue, int length, int active)
    {
        var code = Code(cue, null, null);
        var items = new int[length - 1][];
        for (int t = 0; t < items.Length; t++)
        {
            code = Choose(Context(code), null);
            items[t] = Decode(code, active);
        }
        return items;
    }

    /// <summary>The code the mac would give <paramref name="item"/> after the code <paramref name="previous"/> (null: the first
    /// item of a sequence), drawn from ρ when <paramref name="rng"/> is given, else each module's largest V; learns nothing.
    /// Sets <see cref="Familiarity"/>.</summary>
    public int[] Code(int[] item, int[]? previous, Random? rng) => Choose(Input(item, previous), rng);

    /// <summary>V_i = U_i · H_i for an item after <paramref name="previous"/> (H_i = 1 with none).</summary>
    double[] Input(int[] item, int[]? previous)
    {
        var v = new double[_width];
        foreach (int bit in item)
            for (int i = 0; i < _width; i++) v[i] += _up[(long)bit * _width + i];
        for (int i = 0; i < _width; i++) v[i] /= Math.Max(1, item.Length);
        if (previous is null) return v;
        var h = Context(previous);
        for (int i = 0; i < _width; i++) v[i] *= h[i];
        return v;
    }

    /// <summary>H_i: the fraction of the previous code's Q cells connected to cell i.</summary>
    double[] Context(int[] previous)
    {
        var h = new double[_width];
        foreach (int from in previous)
            for (int i = 0; i < _width; i++) h[i] += _across[(long)from * _width + i];
        for (int i = 0; i < _width; i++) h[i] /= previous.Length;
        return h;
    }

    /// <summary>One winner per module: drawn from ρ when learning (<paramref name="rng"/> given), else the largest V.</summary>
    int[] Choose(double[] v, Random? rng)
    {
        int q = _c.Modules, k = _c.Cells;
        var best = new int[q];                                                          // each module's largest V
        for (int m = 0; m < q; m++)
            for (int j = 1; j < k; j++)
                if (v[m * k + j] > v[m * k + best[m]]) best[m] = j;
        Familiarity = Enumerable.Range(0, q).Average(m => v[m * k + best[m]]);
        double g = Math.Max(0, (Familiarity - _c.FamiliarityFloor) / (1 - _c.FamiliarityFloor));
        double eta = 1 + _c.Chi * k * Math.Pow(g, _c.Gamma);
        var code = new int[q];
        var mu = new double[k];
        for (int m = 0; m < q; m++)
        {
            double total = 0;
            for (int j = 0; j < k; j++)
                total += mu[j] = 1 + (eta - 1) / (1 + Math.Exp(-_c.Slope * (v[m * k + j] - _c.Midpoint)));
            int winner = best[m];
            if (rng is not null)
            {
                double draw = rng.NextDouble() * total;
                for (winner = 0; winner < k - 1 && (draw -= mu[winner]) > 0; winner++) { }
            }
            code[m] = m * k + winner;
        }
        return code;
    }

    /// <summary>The <paramref name="active"/> input bits that reach the most cells of <paramref name="code"/> (lowest bit first
    /// on ties).</summary>
    public int[] Decode(int[] code, int active)
    {
        var reach = new int[_c.Inputs];
        for (int bit = 0; bit < _c.Inputs; bit++)
            foreach (int cell in code) reach[bit] += _up[(long)bit * _width + cell];
        return [.. Enumerable.Range(0, _c.Inputs).OrderByDescending(b => reach[b]).ThenBy(b => b).Take(active).Order()];
    }
}
