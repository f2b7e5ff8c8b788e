import sys
variant=sys.argv[1]; groups=int(sys.argv[2]); G=int(sys.argv[3]); begin=sys.argv[4] if len(sys.argv)>4 else "BEGIN IMMEDIATE"
SYMS=["AAPL","MSFT","GOOG","AMZN","NVDA","META","TSLA","AMD"]
out=sys.stdout
v2 = variant!="v1"
seq=0; off={}; t0=1764590000000
for g in range(groups):
    now=t0+g*12
    out.write(begin+";\n")
    candles={}; topics={}
    for i in range(G):
        sym=SYMS[seq%8]; price=100+(seq%1000)/8; ts=now
        if v2: out.write(f"INSERT INTO ticks (symbol, price, volume, ts, received_at) VALUES ('{sym}',{price},{seq},{ts},{now});\n")
        else: out.write(f"INSERT INTO ticks (symbol, price, volume, ts) VALUES ('{sym}',{price},{seq},{ts});\n")
        body='{"symbol":"%s","price":%s,"volume":%d,"ts":%d}'%(sym,price,seq,ts)
        for topic,b in (("ticks",body),("ticks:"+sym,body),("candles:"+sym,'{"candle":{"symbol":"%s","interval":"1s","start":%d,"open":%s,"high":%s,"low":%s,"close":%s,"volume":%d},"closed":false}'%(sym,ts//1000*1000,price,price,price,price,seq)),("candles:"+sym,'{"candle":{"symbol":"%s","interval":"1m","start":%d,"open":%s,"high":%s,"low":%s,"close":%s,"volume":%d},"closed":false}'%(sym,ts//60000*60000,price,price,price,price,seq))):
            o=off.get(topic,0)+1; off[topic]=o; topics[topic]=o
            ck = f"'{sym}'" if topic=="ticks" else "NULL"
            out.write(f"INSERT OR REPLACE INTO events (topic, \"offset\", body, conflation_key, source_ts) VALUES ('{topic}',{o},'{b}',{ck},{ts});\n")
        for iv,span in (("1s",1000),("1m",60000)): candles[(sym,iv,ts//span*span)]=price
        seq+=1
    for (sym,iv,start),p in candles.items():
        if v2: out.write(f"INSERT INTO candles (symbol, interval, start, open, high, low, close, volume, updated_at) VALUES ('{sym}','{iv}',{start},{p},{p},{p},{p},1.0,{now}) ON CONFLICT (symbol, interval, start) DO UPDATE SET open=excluded.open, high=excluded.high, low=excluded.low, close=excluded.close, volume=excluded.volume, updated_at=excluded.updated_at;\n")
        else: out.write(f"INSERT INTO candles (symbol, interval, start, open, high, low, close, volume) VALUES ('{sym}','{iv}',{start},{p},{p},{p},{p},1.0) ON CONFLICT (symbol, interval, start) DO UPDATE SET open=excluded.open, high=excluded.high, low=excluded.low, close=excluded.close, volume=excluded.volume;\n")
    for t,o in topics.items():
        out.write(f"INSERT INTO topics (topic, epoch, last_offset) VALUES ('{t}','e',{o}) ON CONFLICT (topic) DO UPDATE SET epoch=excluded.epoch, last_offset=max(last_offset, excluded.last_offset);\n")
    out.write("COMMIT;\n")
