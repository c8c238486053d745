"""Draw the example issues' illustrations with Pillow (no downloads), so the repository stays self-contained.

Each picture is a flat illustration on a soft gradient, 1200x630 (the Open Graph card ratio; the email
shows it at 600 px wide, so it stays sharp on high-density screens), saved as an optimised JPEG well
under 60 KB. Shapes are drawn at twice the size and scaled down for smooth edges.

    python content/make_images.py          # (re)writes the JPEGs beside the Markdown files
    python content/make_images.py /tmp/x   # or into another folder (same issue sub-folders)
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

W, H = 1200, 630
SS = 2  # supersampling factor
HERE = Path(__file__).resolve().parent

# A warm café palette shared by all pictures.
CREAM = (250, 243, 232)
SAND = (238, 220, 196)
LATTE = (201, 160, 118)
MOCHA = (126, 84, 56)
ESPRESSO = (64, 40, 30)
LEAF = (96, 140, 98)
SAGE = (170, 196, 160)
YUZU = (246, 192, 64)
TOMATO = (222, 104, 76)
SKY = (178, 208, 222)
INK = (44, 52, 64)
WHITE = (255, 255, 255)


def _s(v: float) -> int:
    return int(round(v * SS))


class Canvas:
    """A supersampled drawing surface with the few shapes the illustrations need."""

    def __init__(self, top: tuple, bottom: tuple):
        self.img = Image.new("RGB", (W * SS, H * SS))
        grad = Image.linear_gradient("L").resize((W * SS, H * SS))
        self.img = Image.composite(Image.new("RGB", self.img.size, bottom), Image.new("RGB", self.img.size, top), grad)
        self.d = ImageDraw.Draw(self.img)

    def rect(self, x0, y0, x1, y1, fill, r=0):
        self.d.rounded_rectangle([_s(x0), _s(y0), _s(x1), _s(y1)], radius=_s(r), fill=fill)

    def circle(self, cx, cy, r, fill):
        self.d.ellipse([_s(cx - r), _s(cy - r), _s(cx + r), _s(cy + r)], fill=fill)

    def ellipse(self, x0, y0, x1, y1, fill):
        self.d.ellipse([_s(x0), _s(y0), _s(x1), _s(y1)], fill=fill)

    def poly(self, pts, fill):
        self.d.polygon([(_s(x), _s(y)) for x, y in pts], fill=fill)

    def line(self, pts, fill, width):
        self.d.line([(_s(x), _s(y)) for x, y in pts], fill=fill, width=_s(width), joint="curve")

    def arc(self, x0, y0, x1, y1, start, end, fill, width):
        self.d.arc([_s(x0), _s(y0), _s(x1), _s(y1)], start, end, fill=fill, width=_s(width))

    def bean(self, cx, cy, size, angle, fill=MOCHA, crease=ESPRESSO):
        """A coffee bean: an ellipse with an S-shaped crease, rotated."""
        w, h = size, size * 0.7
        layer = Image.new("RGBA", (_s(w * 2), _s(w * 2)), (0, 0, 0, 0))
        ld = ImageDraw.Draw(layer)
        ox, oy = _s(w), _s(w)
        ld.ellipse([ox - _s(w / 2), oy - _s(h / 2), ox + _s(w / 2), oy + _s(h / 2)], fill=fill)
        pts = [(ox - _s(w * 0.42) + _s(w * 0.84) * t / 20, oy + _s(h * 0.12) * math.sin(t / 20 * 2 * math.pi)) for t in range(21)]
        ld.line(pts, fill=crease, width=max(2, _s(size * 0.07)), joint="curve")
        layer = layer.rotate(angle, resample=Image.BICUBIC)
        self.img.paste(layer, (_s(cx - w), _s(cy - w)), layer)

    def steam(self, x, y, height, fill=WHITE, width=6):
        pts = [(x + 10 * math.sin(t / 6), y - t) for t in range(0, int(height), 3)]
        self.line(pts, fill, width)

    def soft_shadow(self, x0, y0, x1, y1, alpha=60):
        shadow = Image.new("L", self.img.size, 0)
        ImageDraw.Draw(shadow).ellipse([_s(x0), _s(y0), _s(x1), _s(y1)], fill=alpha)
        shadow = shadow.filter(ImageFilter.GaussianBlur(_s(12)))
        self.img = Image.composite(Image.new("RGB", self.img.size, (0, 0, 0)), self.img, shadow)
        self.d = ImageDraw.Draw(self.img)

    def save(self, path: Path) -> int:
        out = self.img.resize((W, H), Image.LANCZOS)
        out.save(path, "JPEG", quality=82, optimize=True, progressive=True)
        return path.stat().st_size


def scatter_beans(c: Canvas, seed: int, n: int, box: tuple, size=(22, 34)):
    rnd = random.Random(seed)
    x0, y0, x1, y1 = box
    for _ in range(n):
        c.bean(rnd.uniform(x0, x1), rnd.uniform(y0, y1), rnd.uniform(*size), rnd.uniform(0, 180))


def roastery(path: Path) -> int:
    """A brick roastery with a big window showing the drum roaster, steam from the chimney."""
    c = Canvas(SKY, CREAM)
    c.circle(1010, 140, 70, (255, 236, 190))
    c.rect(0, 520, W, H, SAND)
    c.rect(300, 170, 900, 540, (186, 98, 72), r=6)                     # brick building
    for row in range(8):
        y = 190 + row * 42
        for col in range(7):
            x = 320 + col * 84 + (42 if row % 2 else 0)
            if x < 880:
                c.rect(x, y, min(x + 70, 880), y + 28, (198, 112, 84), r=3)
    c.poly([(280, 180), (600, 80), (920, 180)], ESPRESSO)                # roof
    c.rect(760, 60, 810, 150, (90, 60, 50))                             # chimney
    for i, x in enumerate((770, 795)):
        c.steam(x, 55, 60 + 20 * i, fill=(250, 250, 250), width=7)
    c.rect(360, 260, 720, 470, (255, 241, 214), r=14)                   # window
    c.rect(372, 272, 708, 458, (250, 226, 180), r=10)
    c.circle(530, 370, 70, (70, 74, 82))                                # roaster drum
    c.circle(530, 370, 48, (110, 116, 126))
    c.circle(530, 370, 18, YUZU)
    c.poly([(600, 330), (680, 300), (690, 320), (612, 356)], (70, 74, 82))  # hopper arm
    c.rect(470, 430, 590, 458, (70, 74, 82), r=4)
    c.rect(760, 380, 860, 540, ESPRESSO, r=8)                           # door
    c.circle(842, 462, 6, YUZU)
    c.rect(330, 480, 730, 500, LEAF, r=10)                              # planter
    for x in range(345, 720, 38):
        c.circle(x, 478, 20, SAGE)
    scatter_beans(c, 7, 14, (60, 540, 1140, 610))
    return c.save(path)


def latte_recipe(path: Path) -> int:
    """A yuzu-honey latte with yuzu slices and a honey dipper on a table."""
    c = Canvas((255, 238, 200), (250, 246, 236))
    c.rect(0, 460, W, H, (233, 210, 180))
    c.soft_shadow(420, 470, 800, 530)
    c.poly([(440, 190), (760, 190), (720, 490), (480, 490)], WHITE)      # glass
    c.poly([(452, 260), (748, 260), (716, 480), (484, 480)], (236, 206, 160))
    c.poly([(458, 230), (742, 230), (748, 262), (452, 262)], (252, 244, 228))  # foam
    c.poly([(470, 380), (730, 380), (716, 480), (484, 480)], (246, 196, 70))   # yuzu syrup layer
    c.ellipse(560, 205, 640, 245, YUZU)                                 # yuzu peel on top
    c.arc(720, 260, 820, 380, -80, 80, WHITE, 16)                       # handle
    for x, y, r in ((220, 420, 70), (960, 400, 80), (1060, 500, 55)):   # yuzu slices
        c.circle(x, y, r, YUZU)
        c.circle(x, y, r * 0.82, (255, 226, 120))
        for k in range(8):
            a = k * math.pi / 4
            c.line([(x, y), (x + r * 0.8 * math.cos(a), y + r * 0.8 * math.sin(a))], YUZU, 4)
    c.rect(150, 520, 420, 540, MOCHA, r=10)                             # honey dipper
    for k in range(4):
        c.rect(380 + k * 16, 505, 392 + k * 16, 555, (182, 124, 70), r=5)
    for x in (560, 600, 640):
        c.steam(x, 185, 80, fill=(255, 255, 255), width=6)
    c.poly([(820, 120), (870, 80), (900, 130), (850, 160)], LEAF)       # leaves
    c.poly([(300, 150), (340, 100), (360, 150), (320, 180)], SAGE)
    return c.save(path)


def bakery(path: Path) -> int:
    """A small bakery-café front with a striped awning and bread in the window."""
    c = Canvas((214, 232, 226), (250, 244, 232))
    c.rect(0, 540, W, H, (214, 200, 182))
    c.rect(230, 150, 970, 545, (250, 240, 222), r=8)                    # façade
    for i in range(10):                                                  # awning stripes
        x = 210 + i * 78
        c.poly([(x, 150), (x + 78, 150), (x + 78, 240), (x, 240)], TOMATO if i % 2 == 0 else WHITE)
    for i in range(10):
        x = 210 + i * 78
        c.ellipse(x, 215, x + 78, 265, TOMATO if i % 2 == 0 else WHITE)
    c.rect(270, 300, 640, 500, (255, 232, 190), r=10)                   # window
    c.rect(282, 312, 628, 488, (250, 220, 168), r=8)
    c.rect(290, 430, 620, 446, MOCHA, r=4)                              # shelf
    for x in (330, 430, 530):                                           # loaves
        c.ellipse(x - 45, 375, x + 45, 432, (214, 150, 84))
        for k in range(3):
            c.line([(x - 24 + k * 20, 385), (x - 14 + k * 20, 420)], (236, 196, 140), 5)
    c.circle(600, 410, 24, (196, 120, 60))                              # croissant-ish bun
    c.rect(700, 300, 900, 545, LEAF, r=8)                               # door
    c.rect(720, 320, 880, 430, (220, 236, 226), r=6)
    c.circle(870, 470, 7, YUZU)
    c.rect(330, 100, 870, 150, ESPRESSO, r=10)                          # sign board
    for k in range(5):
        c.bean(420 + k * 90, 125, 26, 30 + k * 20, fill=LATTE, crease=ESPRESSO)
    for x in (150, 1050):                                               # potted trees
        c.rect(x - 40, 470, x + 40, 545, MOCHA, r=8)
        c.circle(x, 410, 70, LEAF)
        c.circle(x - 30, 380, 45, SAGE)
    return c.save(path)


def delivery(path: Path) -> int:
    """A refrigerated delivery van on a city road at dawn, with parcels."""
    c = Canvas((255, 214, 170), (196, 218, 232))
    c.circle(200, 170, 80, (255, 240, 200))
    for x, h in ((40, 220), (140, 300), (260, 180), (880, 260), (990, 200), (1090, 320)):  # skyline
        c.rect(x, 470 - h, x + 96, 480, (150, 168, 190))
        for wy in range(490 - h, 460, 40):
            c.rect(x + 18, wy, x + 36, wy + 18, (255, 236, 190))
            c.rect(x + 58, wy, x + 76, wy + 18, (255, 236, 190))
    c.rect(0, 470, W, H, (92, 98, 110))                                 # road
    for x in range(20, W, 160):
        c.rect(x, 548, x + 90, 560, (236, 230, 210), r=4)
    c.soft_shadow(300, 495, 900, 535, alpha=80)
    c.rect(320, 270, 700, 500, WHITE, r=16)                             # cargo box
    c.rect(340, 330, 680, 380, LEAF, r=8)
    for k in range(4):
        c.bean(400 + k * 85, 355, 34, 20 + k * 35, fill=CREAM, crease=LEAF)
    c.poly([(700, 330), (800, 330), (870, 400), (880, 500), (700, 500)], YUZU)  # cab
    c.poly([(720, 345), (795, 345), (850, 400), (720, 400)], (200, 228, 240))
    c.rect(860, 440, 892, 462, (255, 250, 220), r=6)                   # headlight
    for x in (420, 780):                                                # wheels
        c.circle(x, 505, 44, INK)
        c.circle(x, 505, 18, (200, 204, 210))
    for i, (x, y) in enumerate(((960, 440), (1040, 440), (1000, 380))):  # parcels
        c.rect(x, y, x + 74, y + 60, (214, 168, 112), r=4)
        c.rect(x + 30, y, x + 44, y + 60, (236, 206, 160))
    return c.save(path)


def cupping(path: Path) -> int:
    """A cupping table with bowls, spoons and bunting: an invitation."""
    c = Canvas((252, 236, 220), (244, 226, 206))
    for i in range(13):                                                 # bunting
        x = 30 + i * 90
        c.poly([(x, 60 + 8 * math.sin(i)), (x + 80, 60 + 8 * math.sin(i + 1)), (x + 40, 140)],
               (TOMATO, YUZU, LEAF, SKY)[i % 4])
    c.line([(0, 60), (W, 60)], MOCHA, 4)
    c.rect(120, 380, 1080, 420, MOCHA, r=10)                            # table top
    c.rect(170, 420, 200, 600, ESPRESSO)
    c.rect(1000, 420, 1030, 600, ESPRESSO)
    c.rect(0, 590, W, H, SAND)
    for i, x in enumerate(range(230, 1000, 150)):                      # cupping bowls
        c.soft_shadow(x - 60, 365, x + 60, 392, alpha=70)
        c.poly([(x - 62, 270), (x + 62, 270), (x + 48, 380), (x - 48, 380)], WHITE)
        c.ellipse(x - 62, 256, x + 62, 286, (236, 236, 236))
        c.ellipse(x - 54, 260, x + 54, 282, (120 - i * 8, 76, 50))
        c.steam(x - 12, 250, 70 + 10 * (i % 2), fill=WHITE, width=5)
    c.line([(860, 230), (960, 330)], (180, 184, 190), 8)                # spoon
    c.ellipse(840, 206, 884, 244, (180, 184, 190))
    c.rect(480, 170, 720, 230, WHITE, r=28)                             # name card
    c.circle(520, 200, 14, TOMATO)
    c.rect(548, 192, 690, 208, (214, 200, 182), r=8)
    scatter_beans(c, 11, 10, (160, 440, 1040, 470), size=(20, 28))
    return c.save(path)


def harvest(path: Path) -> int:
    """Coffee cherries on a branch over rolling hills: a new-crop arrival."""
    c = Canvas((220, 236, 214), (250, 240, 220))
    c.ellipse(-200, 380, 700, 800, (150, 186, 130))
    c.ellipse(400, 420, 1400, 820, (120, 164, 110))
    c.ellipse(100, 470, 900, 900, (176, 204, 150))
    c.line([(80, 110), (400, 180), (720, 150), (1120, 230)], (110, 80, 56), 14)  # branch
    rnd = random.Random(3)
    for x in range(120, 1100, 70):                                      # leaves
        y = 140 + 40 * math.sin(x / 200)
        c.poly([(x, y), (x + 40, y - 70), (x + 70, y - 10)], LEAF)
        c.poly([(x + 20, y + 10), (x + 70, y + 80), (x - 10, y + 60)], (80, 124, 84))
        for _ in range(3):                                              # cherries
            cx, cy = x + rnd.uniform(0, 50), y + rnd.uniform(20, 60)
            c.circle(cx, cy, 16, TOMATO)
            c.circle(cx - 5, cy - 5, 5, (250, 170, 150))
    c.rect(450, 360, 750, 560, (214, 180, 130), r=10)                  # sack
    c.poly([(450, 370), (600, 330), (750, 370)], (196, 160, 112))
    c.rect(520, 420, 680, 500, (240, 224, 196), r=6)
    c.bean(600, 460, 50, 25)
    scatter_beans(c, 5, 12, (300, 560, 900, 610))
    return c.save(path)


def scones(path: Path) -> int:
    """Chestnut scones on a plate with a cup of drip coffee."""
    c = Canvas((244, 226, 204), (252, 246, 236))
    c.rect(0, 430, W, H, (206, 170, 132))
    c.soft_shadow(230, 480, 770, 560, alpha=70)
    c.ellipse(220, 420, 780, 540, WHITE)                               # plate
    c.ellipse(260, 432, 740, 528, (244, 244, 240))
    for x, y in ((360, 430), (500, 410), (630, 440)):                  # scones
        c.poly([(x - 70, y + 50), (x - 50, y - 30), (x + 50, y - 40), (x + 72, y + 46)], (220, 170, 104))
        c.poly([(x - 50, y - 30), (x + 50, y - 40), (x + 40, y - 10), (x - 42, y - 4)], (236, 196, 130))
        for k in range(3):
            c.circle(x - 30 + k * 30, y + 10 + (k % 2) * 12, 9, (150, 96, 58))
    for x, y in ((160, 560), (880, 540), (1040, 580)):                  # chestnuts
        c.ellipse(x - 40, y - 34, x + 40, y + 34, (120, 70, 40))
        c.ellipse(x - 36, y + 4, x + 36, y + 34, (190, 150, 110))
    c.soft_shadow(860, 410, 1080, 450)
    c.rect(880, 250, 1040, 430, WHITE, r=24)                           # mug
    c.arc(1010, 290, 1090, 380, -90, 90, WHITE, 18)
    c.ellipse(888, 242, 1032, 278, (94, 58, 38))
    c.rect(900, 320, 1020, 350, LEAF, r=6)
    for x in (930, 970):
        c.steam(x, 235, 80, fill=WHITE, width=6)
    return c.save(path)


def order_app(path: Path) -> int:
    """A phone with a simple ordering screen, parcels and a check mark."""
    c = Canvas((206, 226, 240), (244, 240, 232))
    c.circle(980, 160, 120, (230, 240, 246))
    c.circle(180, 520, 150, (230, 236, 222))
    c.soft_shadow(430, 560, 770, 610, alpha=70)
    c.rect(450, 60, 750, 590, INK, r=40)                               # phone
    c.rect(468, 100, 732, 560, WHITE, r=18)
    c.rect(560, 76, 640, 86, (90, 98, 110), r=5)
    c.rect(488, 120, 712, 170, LEAF, r=12)                             # header
    for i in range(3):                                                  # product rows
        y = 196 + i * 100
        c.rect(488, y, 712, y + 82, (246, 240, 230), r=12)
        c.rect(500, y + 12, 558, y + 70, (LATTE, YUZU, SAGE)[i], r=10)
        c.bean(529, y + 41, 30, 30 * i, fill=MOCHA if i == 0 else WHITE, crease=ESPRESSO if i == 0 else LATTE)
        c.rect(574, y + 20, 690, y + 34, (206, 196, 184), r=7)
        c.rect(574, y + 48, 650, y + 60, (226, 218, 206), r=6)
    c.rect(520, 500, 680, 540, TOMATO, r=20)                            # order button
    c.circle(850, 300, 70, LEAF)                                        # check mark badge
    c.line([(815, 300), (842, 328), (890, 272)], WHITE, 16)
    for x, y in ((180, 380), (260, 420), (220, 320)):                   # parcels
        c.rect(x, y, x + 90, y + 70, (214, 168, 112), r=4)
        c.rect(x + 38, y, x + 52, y + 70, (236, 206, 160))
    return c.save(path)


PICTURES = {
    "2026-11/seongsu-roastery.jpg": roastery,
    "2026-11/yuzu-honey-latte.jpg": latte_recipe,
    "2026-11/customer-story-bakery.jpg": bakery,
    "2026-11/dawn-delivery.jpg": delivery,
    "2026-11/cupping-invitation.jpg": cupping,
    "2026-10/ethiopia-new-crop.jpg": harvest,
    "2026-10/chestnut-scone.jpg": scones,
    "2026-10/order-app.jpg": order_app,
}


def main(out: Path = HERE) -> None:
    for rel, draw in PICTURES.items():
        path = Path(out) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        size = draw(path)
        print(f"{rel}: {size / 1024:.1f} KB")


if __name__ == "__main__":
    import sys

    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
