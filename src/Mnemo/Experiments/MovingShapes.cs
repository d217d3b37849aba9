using static TorchSharp.torch;

namespace Mnemo.Experiments;

/// <summary>
/// Moving shapes (docs/grid-forecast.md#the-task): the Moving MNIST task of Shi et al. 2015 scaled to a CPU. Each sequence
/// is <c>frames</c> binary grids of side <c>size</c> in which <c>shapes</c> 4×4 glyphs (a filled square, a hollow square,
/// a cross, a plus) start at random places and move in straight lines at a random direction and speed (0.5–1.5 cells per
/// frame), bouncing off the edges; overlapping glyphs are OR-ed. Positions are continuous and drawn at the nearest cell.
/// The same seed always gives the same sequences.
/// </summary>
public static class MovingShapes
{
    public const int Glyph = 4;

    static readonly string[][] Glyphs =
    [
        ["####", "####", "####", "####"],
        ["####", "#..#", "#..#", "####"],
        ["#..#", ".##.", ".##.", "#..#"],
        [".##.", "####", "####", ".##."],
    ];

    /// <summary>Sequences [count, frames, 1, size, size] of 0/1 floats.</summary>
    public static Tensor Sample(int count, int frames, int size, int shapes, int seed)
    {
        if (size < Glyph + 1)
            throw new ArgumentOutOfRangeException(nameof(size), $"the grid must be larger than a glyph ({Glyph}), got {size}");
        if (shapes < 1) throw new ArgumentOutOfRangeException(nameof(shapes), $"at least one shape, got {shapes}");
        var pixels = new float[(long)count * frames * size * size];
        var rng = new Random(seed);
        double room = size - Glyph;                                                     // a glyph's top-left corner stays in [0, room]
        for (int s = 0; s < count; s++)
            for (int k = 0; k < shapes; k++)
            {
                var glyph = Glyphs[rng.Next(Glyphs.Length)];
                double y = rng.NextDouble() * room, x = rng.NextDouble() * room;
                double angle = rng.NextDouble() * 2 * Math.PI, speed = 0.5 + rng.NextDouble();
                double vy = speed * Math.Sin(angle), vx = speed * Math.Cos(angle);
                for (int f = 0; f < frames; f++)
                {
                    int top = (int)Math.Round(y), left = (int)Math.Round(x);
                    long frame = ((long)s * frames + f) * size * size;
                    for (int r = 0; r < Glyph; r++)
                        for (int c = 0; c < Glyph; c++)
                            if (glyph[r][c] == '#') pixels[frame + (top + r) * size + left + c] = 1;
                    (y, vy) = Bounce(y + vy, vy, room);
                    (x, vx) = Bounce(x + vx, vx, room);
                }
            }
        return tensor(pixels, [count, frames, 1, size, size]);
    }

    /// <summary>A coordinate moved past an edge is reflected back inside and its velocity reversed.</summary>
    static (double Position, double Velocity) Bounce(double p, double v, double room) =>
        p < 0 ? (-p, -v) : p > room ? (2 * room - p, -v) : (p, v);
}
