#!/bin/sh
# エイリアス一括登録 (豊川市 SMTPゲートウェイ) 2024-04-01
cd /usr/local/mta/bin

# 職員 (アドレス単位のエイリアス: 構成B)
./epstman mode=NA domname=city.toyokawa.aichi.jp aliases=tanaka@city.toyokawa.aichi.jp mappedto=tanaka@city.toyokawa.aichi.jp
./epstman mode=NA domname=city.toyokawa.aichi.jp aliases=suzuki mappedto=suzuki
/usr/local/mta/bin/epstman mode=NA domname=city.toyokawa.aichi.jp aliases="info@city.toyokawa.aichi.jp" mappedto=tanaka@city.toyokawa.aichi.jp;
# 2009年度採用: 部分ワイルドカード
./epstman mode=NA domname=city.toyokawa.aichi.jp aliases=2009*@city.toyokawa.aichi.jp mappedto=2009*@city.toyokawa.aichi.jp
./epstman mode=NA domname=city.toyokawa.aichi.jp \
  aliases=kikaku@city.toyokawa.aichi.jp mappedto=soumu@city.toyokawa.aichi.jp
echo done
