package sanitize

import "testing"

func TestHTMLToText(t *testing.T) {
	for _, c := range []struct {
		name, html, links, want string
	}{
		{"paragraphs and breaks", "<p>一行目<br>二行目</p><p>次の段落</p>", LinksDefang, "一行目\n二行目\n\n次の段落"},
		{"white space collapses, ideographic space stays", "<p>  a \n  b　c </p>", LinksDefang, "a b　c"},
		{"nested lists", "<ul><li>a<ul><li>b</li></ul></li><li>c</li></ul><ol><li>x</li><li>y</li></ol>", LinksDefang, "・a\n  ・b\n・c\n\n1. x\n2. y"},
		{"pre keeps its lines", "<pre>a  b\n  c</pre>", LinksDefang, "a  b\n  c"},
		{"blockquote", "<p>reply</p><blockquote>quoted<br>text</blockquote>", LinksDefang, "reply\n\n> quoted\n> text"},
		{"script, style, head, title hidden", "<head><title>T</title><style>p{}</style></head><script>x()</script><p>shown</p>", LinksDefang, "shown"},
		{"entities", "<p>&lt;b&gt; &amp; &yen;100 &#x3042;</p>", LinksDefang, "<b> & ¥100 あ"},
		{"link target shown", `<a href="https://example.jp/a">here</a>`, LinksDefang, "here [https://example.jp/a]"},
		{"link that is its own text", `<a href="https://example.jp/a">https://example.jp/a</a>`, LinksDefang, "https://example.jp/a"},
		{"link target removed", `<a href="https://example.jp/a">here</a>`, LinksRemove, "here"},
		{"javascript and mailto", `<a href="javascript:x()">j</a> <a href="mailto:a@example.jp?subject=x">mail</a>`, LinksDefang, "j mail [a@example.jp]"},
		{"data table aligned", "<table><tr><th>名前</th><th>値</th></tr><tr><td>りんご</td><td>100</td></tr></table>", LinksDefang, "名前   | 値\nりんご | 100"},
		{"short cells with br stay a table", "<table><tr><td>住所<br>電話</td><td>東京<br>03</td></tr><tr><td>a</td><td>b</td></tr></table>", LinksDefang, "住所 / 電話 | 東京 / 03\na           | b"},
		{"layout table as blocks", "<table><tr><td><p>第一段落</p><p>第二段落</p></td></tr></table>", LinksDefang, "第一段落\n\n第二段落"},
		{"image alt", `<img src="x.png" alt="ロゴ"><img src="spacer.gif">`, LinksDefang, "[画像: ロゴ]"},
		{"unclosed table", "<table><tr><td>a</td><td>b", LinksDefang, "a | b"},
	} {
		if got := htmlToText(c.html, c.links); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}
