"""The import-circles check finds what it is there to find (and nothing else)."""

import os
import subprocess
import tempfile
import unittest

TOOL = os.path.join(os.path.dirname(__file__), "..", "bin", "import-circles")


def crate(files):
    """A crate's src folder holding `files` (path -> text)."""
    root = tempfile.mkdtemp()
    for path, text in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as f:
            f.write(text)
    return root


def check(src):
    return subprocess.run([TOOL, src], capture_output=True, text=True)


class ImportCircles(unittest.TestCase):
    def test_two_files_importing_each_other_are_a_circle(self):
        src = crate({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "use crate::b::B;\npub struct A(B);\n",
            "b.rs": "pub struct B;\npub fn f(_: crate::a::A) {}\n",
        })
        out = check(src)
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertIn("a -> b", out.stdout)
        self.assertIn("b -> a", out.stdout)

    def test_a_loop_through_a_re_export_is_a_circle(self):
        src = crate({
            "lib.rs": "mod m;\n",
            "m/mod.rs": "mod child;\npub use child::C;\npub struct P;\n",
            "m/child.rs": "use super::P;\npub struct C(P);\n",
        })
        self.assertEqual(check(src).returncode, 1)

    def test_a_facade_and_leaves_are_not_a_circle(self):
        src = crate({
            "lib.rs": "mod m;\n",
            "m/mod.rs": "mod child;\nmod leaf;\npub use child::C;\npub use leaf::P;\n",
            "m/leaf.rs": "pub struct P;\n",
            "m/child.rs": "use super::P;\npub struct C(P);\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
        })
        out = check(src)
        self.assertEqual(out.returncode, 0, out.stdout)
        self.assertEqual(out.stdout, "")


if __name__ == "__main__":
    unittest.main()
